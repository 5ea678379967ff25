package fuse

// Maximum file write size we are prepared to receive from the kernel.
//
// Linux caps this at 128 KiB (32 pages) unless the init reply asks for
// more pages with InitMaxPages (Linux 4.20 and later); synfs asks for
// 1 MiB, which also lets the kernel send 1 MiB reads.
const maxWrite = 1 << 20
