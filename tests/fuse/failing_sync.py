#!/usr/bin/env python3
"""A FUSE filesystem (fusepy over Debian's libfuse2) that passes everything through to a
backing directory, except that fsync/fdatasync fail with EIO while the file CONTROL exists.

    failing_sync.py BACKING MOUNTPOINT CONTROL

Runs in the foreground until unmounted (`fusermount -u MOUNTPOINT`). Writes, including those
of a shared writable mmap, reach BACKING as usual: only the "is it on disk?" question fails,
as it does on a disk whose write cache cannot be flushed or a network filesystem that lost
its server.
"""

import errno
import os
import sys

from fuse import FUSE, FuseOSError, Operations


class FailingSync(Operations):
    def __init__(self, root, control):
        self.root = root
        self.control = control
        self.failed = 0

    def _full(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def _sync_fails(self):
        if os.path.exists(self.control):
            self.failed += 1
            with open(self.control + ".count", "w") as f:
                f.write(str(self.failed))
            return True
        return False

    # Files and directories.
    def access(self, path, mode):
        if not os.access(self._full(path), mode):
            raise FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        return os.chmod(self._full(path), mode)

    def chown(self, path, uid, gid):
        return os.chown(self._full(path), uid, gid)

    def getattr(self, path, fh=None):
        st = os.lstat(self._full(path))
        keys = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink",
                "st_size", "st_uid", "st_blocks")
        return {k: getattr(st, k) for k in keys}

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._full(path))

    def readlink(self, path):
        return os.readlink(self._full(path))

    def mknod(self, path, mode, dev):
        return os.mknod(self._full(path), mode, dev)

    def rmdir(self, path):
        return os.rmdir(self._full(path))

    def mkdir(self, path, mode):
        return os.mkdir(self._full(path), mode)

    def statfs(self, path):
        st = os.statvfs(self._full(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
                "f_files", "f_flag", "f_frsize", "f_namemax")
        return {k: getattr(st, k) for k in keys}

    def unlink(self, path):
        return os.unlink(self._full(path))

    def symlink(self, name, target):
        return os.symlink(target, self._full(name))

    def rename(self, old, new):
        return os.rename(self._full(old), self._full(new))

    def link(self, target, name):
        return os.link(self._full(name), self._full(target))

    def utimens(self, path, times=None):
        return os.utime(self._full(path), times)

    # File contents.
    def open(self, path, flags):
        return os.open(self._full(path), flags)

    def create(self, path, mode, fi=None):
        return os.open(self._full(path), os.O_RDWR | os.O_CREAT, mode)

    def read(self, path, length, offset, fh):
        return os.pread(fh, length, offset)

    def write(self, path, buf, offset, fh):
        return os.pwrite(fh, buf, offset)

    def truncate(self, path, length, fh=None):
        with open(self._full(path), "r+") as f:
            f.truncate(length)

    def flush(self, path, fh):
        # close(2) of a descriptor: not a durability promise, never failed here.
        return 0

    def release(self, path, fh):
        return os.close(fh)

    def fsync(self, path, datasync, fh):
        if self._sync_fails():
            raise FuseOSError(errno.EIO)
        if datasync:
            return os.fdatasync(fh)
        return os.fsync(fh)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: failing_sync.py BACKING MOUNTPOINT CONTROL")
    backing, mountpoint, control = sys.argv[1:]
    FUSE(FailingSync(os.path.abspath(backing), os.path.abspath(control)), mountpoint,
         foreground=True, nothreads=False)


if __name__ == "__main__":
    main()
