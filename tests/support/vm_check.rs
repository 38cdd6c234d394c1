//! shm-vm-check: runs inside a VM guest (see tests/vm/); placeholder.
fn main() {}
