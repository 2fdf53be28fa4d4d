#!/usr/bin/env python3
"""ack_writer.py — write a known pattern and record what was acknowledged.

  ack_writer.py write FILE ACKFILE CHUNK DELAY
      Write blocks of CHUNK bytes to FILE, DELAY seconds apart, until a
      write fails.  After every successful write, ACKFILE holds the number
      of bytes the kernel has reported written so far (one decimal line,
      rewritten in place), so a test that stops the filesystem mid-way
      knows exactly which prefix of FILE must have survived.
  ack_writer.py expect CHUNK N
      Print the first N bytes of the pattern, to compare with.

Every block starts with its index, so a lost, repeated or misplaced block
changes the checksum of the prefix.
"""
import os
import sys
import time


def block(i, chunk):
    head = b"%012d:" % i
    body = bytes(range(256)) * (chunk // 256 + 1)
    return (head + body)[:chunk]


def write(path, ackfile, chunk, delay):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    ack = os.open(ackfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.pwrite(ack, b"%020d\n" % 0, 0)
    total = 0
    i = 0
    while True:
        b = block(i, chunk)
        try:
            n = os.write(fd, b)
        except OSError as e:
            print("ack_writer: stopped after %d bytes: %s" % (total, e),
                  file=sys.stderr)
            return 0
        total += n
        os.pwrite(ack, b"%020d\n" % total, 0)
        if n < len(b):
            # A short write: the next block would not line up; stop here.
            print("ack_writer: short write after %d bytes" % total,
                  file=sys.stderr)
            return 0
        i += 1
        if delay > 0:
            time.sleep(delay)


def expect(chunk, n):
    out = sys.stdout.buffer
    i = 0
    while n > 0:
        b = block(i, chunk)[:n]
        out.write(b)
        n -= len(b)
        i += 1


if __name__ == "__main__":
    if sys.argv[1] == "write":
        sys.exit(write(sys.argv[2], sys.argv[3], int(sys.argv[4]),
                       float(sys.argv[5])))
    if sys.argv[1] == "expect":
        expect(int(sys.argv[2]), int(sys.argv[3]))
        sys.exit(0)
    sys.exit("usage: ack_writer.py write FILE ACKFILE CHUNK DELAY | "
             "expect CHUNK N")
