#!/usr/bin/env python3
"""Cuts the kernel's BTF (.BTF, what /sys/kernel/btf/vmlinux holds) out of an uncompressed kernel
image (Debian's arm64 vmlinuz is a plain Image, without ELF sections): the one blob that starts
with the BTF header (magic 0xeb9f, version 1, hdr_len 24) whose type and string sections follow it
back to back and whose string section starts and ends with a NUL.
Usage: extract-btf.py IMAGE OUT"""
import struct
import sys

image = open(sys.argv[1], "rb").read()
at = image.find(b"\x9f\xeb\x01\x00\x18\x00\x00\x00")
while at >= 0:
    type_off, type_len, str_off, str_len = struct.unpack_from("<4I", image, at + 8)
    end = at + 24 + str_off + str_len
    strings = image[at + 24 + str_off:end]
    if type_off == 0 and str_off == type_len and type_len > 1 << 20 and end <= len(image) \
            and strings[:1] == b"\0" and strings[-1:] == b"\0":
        open(sys.argv[2], "wb").write(image[at:end])
        print(f"BTF at {at:#x}: {end - at} bytes")
        sys.exit(0)
    at = image.find(b"\x9f\xeb\x01\x00\x18\x00\x00\x00", at + 1)
sys.exit("no BTF blob found")
