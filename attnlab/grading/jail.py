"""The sandbox's first step, inside fresh Linux namespaces, before any student code.

:mod:`attnlab.grading.sandbox` starts this file as a *script* (``python -I -S
jail.py CONFIG``, so that it imports nothing but the standard library) under
``unshare --pid --fork --kill-child --mount-proc --net --mount`` (and ``--user
--map-root-user`` when the grader is not root). It is then process 1 of a PID
namespace whose death ends every process a submission starts, in a network
namespace with no interface but a closed loopback, and in a private mount
namespace, where it

1. binds the submission's work folder onto ``/tmp`` (its only writable folder, and
   its ``/tmp``: private to this submission), and puts empty size-capped tmpfs over
   ``/var/tmp`` and ``/dev/shm``; where the grader's Python lives under ``/tmp``
   (an environment made in ``mktemp -d``) or under a folder the sandbox user may not
   enter (``/root``, a mode-700 folder), that folder is covered with an empty tmpfs
   and only what the Python needs is bound back into it, read-only;
2. hides what a submission must not read (the other submissions, the graders'
   work folders, a course's own tests) under empty read-only tmpfs, or
   ``/dev/null`` for a single file;
3. remounts every other mount read-only, so that nothing outside its folder can
   be written, whatever the file permissions say;
4. sets resource limits (CPU, memory, file size, open files, processes);
5. drops every privilege: as root, to the job's own unprivileged uid; in a user
   namespace, every capability (an empty bounding set) and ``no_new_privs``;
6. and ``exec``\\ s the runner (:mod:`attnlab.grading.runner`) in ``/tmp``.

Any step that fails ends the process with status 70 and a line on stderr: a
sandbox that could not be set up never runs a submission.
"""

import ctypes
import json
import os
import resource
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_NOATIME, MS_NODIRATIME = 32, 4096, 1024, 2048
MS_RELATIME, MS_STRICTATIME, MS_REC = 1 << 21, 1 << 24, 16384
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
SETUP_FAILED = 70
_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
          "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}
# never remounted: kernel views whose own permissions protect them
_KERNEL = ("/proc", "/sys")
# the child's own folders: its work folder on /tmp, empty scratch space on the others
_PRIVATE = ("/tmp", "/var/tmp", "/dev/shm")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]


class SetupError(Exception):
    """A step of the sandbox's set-up failed."""


def _mount(source, target, fstype, flags, data=None):
    enc = [None if x is None else os.fsencode(x) for x in (source, target, fstype, data)]
    if _libc.mount(enc[0], enc[1], enc[2], flags, enc[3]) != 0:
        err = ctypes.get_errno()
        raise SetupError(f"mount {target}: {os.strerror(err)}")


def _unescape(field):
    # /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = bytearray(), 0
    raw = os.fsencode(field)
    while i < len(raw):
        if raw[i:i + 1] == b"\\" and raw[i + 1:i + 4].isdigit():
            out.append(int(raw[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


def _mounts():
    """(mount point, per-mount flags) of every mount, in mount order."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            found.append((_unescape(fields[4]), fields[5].split(",")))
    return found


def _under(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def _read_only_everywhere(keep, except_=()):
    """Remount every mount read-only, except ``keep`` and the kernel's views.

    Mounts under ``except_`` (bound back into a kept folder) are made read-only too.
    """
    for point, options in _mounts():
        if any(_under(point, k) for k in _KERNEL):
            continue
        if any(_under(point, k) for k in keep) and not any(_under(point, e) for e in except_):
            continue
        if "ro" in options:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for name in options:
            flags |= _FLAGS.get(name, 0)
        try:
            _mount(None, point, None, flags)
        except SetupError as err:
            # a mount hidden under another one cannot be reached, hence not written
            if os.path.exists(point) and not _is_overmounted(point):
                raise SetupError(f"could not make {point} read-only ({err})") from None


def _is_overmounted(point):
    """Whether a later mount covers ``point`` (so its own files are out of reach)."""
    mounts = [p for p, _ in _mounts()]
    for i, other in enumerate(mounts):
        if other == point:
            return any(_under(point, later) for later in mounts[i + 1:])
    return False


def _hide(path, kept):
    private = any(_under(path, p) for p in _PRIVATE) and not any(_under(path, k) for k in kept)
    if private or not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
               "size=4k,mode=0555")
    elif os.path.isfile(path) and not os.path.islink(path):
        _mount("/dev/null", path, None, MS_BIND)


def _drop_capabilities():
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    if cap == 0:
        raise SetupError("could not drop the capability bounding set")


def _limits(limits):
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def setup(config):
    """Steps 1-5 above; returns the runner's command."""
    work = config["workdir"]
    covers = config["covers"]  # {folder to cover: [paths under it to bind back]}
    kept = [(path, os.open(path, os.O_PATH)) for paths in covers.values() for path in paths]
    fds = dict(kept)
    _mount(work, "/tmp", None, MS_BIND)
    for cover, paths in covers.items():
        if cover != "/tmp":
            _mount("tmpfs", cover, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
        for path in paths:
            fd = fds[path]
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(path, mode=0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
                open(path, "a").close()
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
            os.close(fd)
    for scratch in ("/var/tmp", "/dev/shm"):
        if os.path.isdir(scratch):
            _mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV,
                   f"size={config['scratch_mb']}m,mode=1777")
    for path in config["hide"]:
        _hide(path, [k for k, _ in kept])
    _read_only_everywhere(keep=_PRIVATE, except_=[path for path, _ in kept])
    _limits(config["limits"])
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SetupError("could not set no_new_privs")
    uid = config.get("uid")
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise SetupError("could not change to the sandbox user")
    else:
        _drop_capabilities()
    os.chdir("/tmp")
    return config["command"]


def main():
    try:
        with open(sys.argv[1]) as f:
            config = json.load(f)
        command = setup(config)
    except (SetupError, OSError, KeyError, ValueError) as err:
        sys.stderr.write(f"attnlab sandbox set-up failed: {err}\n")
        sys.stderr.flush()
        os._exit(SETUP_FAILED)
    os.execve(command[0], command, os.environ)


if __name__ == "__main__":
    main()
