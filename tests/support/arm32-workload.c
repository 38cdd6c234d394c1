/* The AArch32 workload of the arm64 tests (events.rs,
 * arm32_segment_life_is_reported_field_for_field): a 32-bit ARM process,
 * built static for armhf (tests/vm/matrix.sh --arch arm64 builds it with
 * the cross compiler of scripts/cross-toolchain.sh). It reads one line
 * from stdin first, so that a tracer can be started with its pid, then
 * makes one segment's life with the AArch32 system calls themselves, by
 * number (arch/arm/tools/syscall.tbl: shmat 305, shmdt 306, shmget 307,
 * shmctl 308), and prints one JSON line: its pid and tid and what each call
 * returned (-errno on failure).
 * With the argument `quiet` it makes no shared-memory call: signal handlers
 * return (rt_sigreturn restores registers that name no syscall), a pause()
 * is interrupted, numbers that are no syscall are made, and it prints
 * nothing (nothing_invented.rs). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NR_SHMAT 305
#define NR_SHMDT 306
#define NR_SHMGET 307
#define NR_SHMCTL 308
#define IPC_CREAT 01000
#define IPC_RMID 0
#define IPC_STAT 2
#define IPC_64 0x100
#define SHM_LOCK 11
#define SHM_RDONLY 010000

static long sys(long ret)
{
	return ret == -1 ? -errno : ret;
}

static void ignore(int sig)
{
	(void)sig;
}

static int quiet(void)
{
	static char stat_buf[256]; /* more than struct stat64 */
	struct sigaction action;
	int i;

	memset(&action, 0, sizeof(action));
	action.sa_handler = ignore;
	sigaction(SIGUSR1, &action, NULL);
	sigaction(SIGALRM, &action, NULL);
	for (i = 0; i < 5; i++)
		raise(SIGUSR1);
	alarm(1);
	pause();
	/* 195 and 197 are arm64's shmctl and shmdt, here stat64 and fstat64. */
	if (syscall(195, "/", stat_buf) || syscall(197, 1, stat_buf))
		return 1;
	if (syscall(-1) != -1 || errno != ENOSYS)
		return 1;
	return syscall(0x7fff) == -1 && errno == ENOSYS ? 0 : 1;
}

int main(int argc, char **argv)
{
	static char buf[4096]; /* more than struct shmid64_ds */
	char line[16];
	long id, dt, stat, lock, rmid;
	unsigned long at;

	prctl(PR_SET_NAME, "shm-arm32");
	if (argc > 1 && !strcmp(argv[1], "quiet"))
		return quiet();
	if (!fgets(line, sizeof(line), stdin))
		return 2;
	id = sys(syscall(NR_SHMGET, 0 /* IPC_PRIVATE */, 4096, IPC_CREAT | 0600));
	/* The address is a 32-bit value; glibc reports -4095..-1 as errors. */
	at = (unsigned long)syscall(NR_SHMAT, id, 0, SHM_RDONLY);
	dt = sys(syscall(NR_SHMDT, at));
	/* IPC_64, as glibc's shmctl asks for the 64-bit layout. */
	stat = sys(syscall(NR_SHMCTL, id, IPC_STAT | IPC_64, buf));
	lock = sys(syscall(NR_SHMCTL, id, SHM_LOCK, 0));
	rmid = sys(syscall(NR_SHMCTL, id, IPC_RMID, 0));
	printf("{\"pid\":%d,\"tid\":%ld,\"shmget\":%ld,\"shmat\":%lu,\"shmdt\":%ld,"
	       "\"stat\":%ld,\"lock\":%ld,\"rmid\":%ld}\n",
	       getpid(), syscall(SYS_gettid), id, at, dt, stat, lock, rmid);
	return 0;
}
