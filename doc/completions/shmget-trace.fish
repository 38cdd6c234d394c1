complete -c shmget-trace -s p -l pid -d 'Only calls from these processes (thread group ids): comma-separated or repeated, at most 8' -r
complete -c shmget-trace -s t -l tid -d 'Only calls from this thread' -r
complete -c shmget-trace -s u -l uid -d 'Only calls made by these user ids: comma-separated or repeated, at most 8' -r
complete -c shmget-trace -s n -l name -d 'Only calls from threads whose comm contains this text (as bcc\'s tools match names), at most 15 bytes' -r
complete -c shmget-trace -l name-exact -d 'Only calls from threads whose comm is exactly this' -r
complete -c shmget-trace -s k -l key -d 'Only shmget calls for this key: hex (0x1234) or decimal; 0 is IPC_PRIVATE' -r
complete -c shmget-trace -l cgroup -d 'Only calls from this cgroup or one below it: a cgroup2 path, either under the mount (/sys/fs/cgroup/system.slice) or from its root (/system.slice)' -r
complete -c shmget-trace -l events -d 'Which calls to trace: shmget, shmat, shmdt, shmctl, comma-separated, or all' -r
complete -c shmget-trace -l errno -d 'Only calls that failed with these errors, by name (ENOENT,EACCES): comma-separated or repeated' -r
complete -c shmget-trace -s d -l duration -d 'Stop after this many seconds' -r
complete -c shmget-trace -l count -d 'Stop after this many lines (a line of folded repeats is one)' -r
complete -c shmget-trace -s o -l columns -d 'The columns of the table or of the TSV, comma-separated: time, pid, tid, ppid, uid, gid, comm, abi, call, key, size, shmflg, flags, mode, ret, errno, cgroup, cgroup_path, container, pidns, mntns, origin, owner_uid, creator_pid, squat, event, shmid, cmd, addr, attach_addr, attach_addr_from, count (calls a line stands for), last_time (of a fold line\'s last call), ipcns, host_ipc, reason, reason_code, details (what each call names, and why it failed, as the table shows it)' -r
complete -c shmget-trace -s T -l time -d 'The time: local (the table\'s default; TZ is respected), utc (the default of TSV and JSON) or relative (seconds since the start)' -r -f -a "local\t'Local wall-clock time, as TZ (or /etc/localtime) says'
utc\t''
relative\t'Seconds since the tracer started'"
complete -c shmget-trace -l output -d 'Write the events to this file instead of stdout (made anew, or emptied)' -r -F
complete -c shmget-trace -l attach -d 'How to hook the kernel; auto picks the cheapest that works here' -r -f -a "auto\t''
kprobe\t''
fentry\t''
tracepoint\t''"
complete -c shmget-trace -l ringbuf-size -d 'Ring buffer size: a power of two from 4K to 256M, as bytes or with K, M or G' -r
complete -c shmget-trace -s x -l failed -d 'Only failed calls'
complete -c shmget-trace -l tsv -d 'Tab-separated values with a header line'
complete -c shmget-trace -l json -d 'One JSON object per line'
complete -c shmget-trace -s w -l wide -d 'Table: more columns (tid, uid, abi, mode, origin, container), and no value or line cut to fit the terminal'
complete -c shmget-trace -l no-header -d 'No header line (TSV appended to a log, or a table)'
complete -c shmget-trace -l append -d 'With --output: add to the end of the file instead of emptying it'
complete -c shmget-trace -s v -l verbose -d 'Say why each attach mode was or was not used; -vv adds libbpf\'s log'
complete -c shmget-trace -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shmget-trace -s V -l version -d 'Print version'
