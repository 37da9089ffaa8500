"""The operating system's fence around a visitor's program (Linux): Landlock, seccomp, capabilities, rlimits.

Applied by the forked child (playground/zygote.py) to itself, after it has connected to the server and before it
compiles the visitor's program; it cannot be undone (no_new_privs, a Landlock domain and a seccomp filter last
for the life of the process). Modelled on how public code runners fence untrusted code: Hugging Face's sandbox
server (Landlock: its own home plus read-only system folders, no TCP), the Rust playground and Compiler Explorer
(no network, no new processes, time and memory limits).

- Landlock (a small ctypes layer: the kernel ABI is three syscalls): read-only access to what Python and the
  libraries need, read-write to the run's own scratch folder, nothing else of the file system (not the app's
  files, other visitors' folders, /proc of other processes, the server's saved Hub login); no TCP bind or
  connect (ABI 4+); abstract unix sockets and signals scoped to the sandbox (ABI 6+).
- seccomp (libseccomp through pyseccomp): no exec, no new processes (threads only), no ptrace or reading other
  processes' memory, no new sockets, no signals to other processes, no io_uring (it bypasses seccomp), no
  mounts, namespaces, BPF, perf, keyrings or kernel modules. A refused call fails with EPERM, so a program
  gets Python's PermissionError on its own line instead of dying.
- capabilities: all dropped (bounding set, ambient, effective/permitted/inheritable) when the server runs as
  root (a Docker default, CI), so uid 0 in the child is no more than any user.
- rlimits: CPU seconds, address space, file size, open files, no core dumps.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
import sys
from dataclasses import dataclass, field

from core.i18n import t

# ---- Landlock: the kernel's uapi (linux/landlock.h), stable across architectures ------------------------------
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_PR_SET_DUMPABLE = 4

FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REMOVE_DIR, FS_REMOVE_FILE, FS_MAKE_CHAR, FS_MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
FS_MAKE_REG, FS_MAKE_SOCK, FS_MAKE_FIFO, FS_MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
FS_MAKE_SYM, FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
# What each ABI version added: the handled set must only name rights the running kernel knows.
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV  # valid on a non-directory
READ = FS_READ_FILE | FS_READ_DIR
WRITE = (READ | FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_DIR | FS_MAKE_REG | FS_REFER
         | FS_TRUNCATE)   # no symlinks (a link to the server's files would be served as a download), no devices


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _LIBC.syscall.restype = ctypes.c_long
    return _LIBC


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: none, disabled, or not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        v = _libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(v), 0)


def _fs_rights(abi: int) -> int:
    return _FS_BY_ABI[max(k for k in _FS_BY_ABI if k <= abi)]


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def landlock_restrict(read_paths: list[str], write_paths: list[str], rw_files: list[str] = (),
                      ioctl_paths: list[str] = ()) -> dict:
    """Restrict this process (and its threads created later) to the given paths; no TCP; scoped signals and
    abstract sockets where the kernel has them. Returns what was applied."""
    abi = landlock_abi()
    if abi < 1:
        raise OSError(errno.ENOSYS, "Landlock is not available")
    libc = _libc()
    fs = _fs_rights(abi)
    attr = _RulesetAttr(handled_access_fs=fs,
                        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
                        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = _check(libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                                  ctypes.c_uint32(0)), "landlock_create_ruleset")
    added: list[str] = []
    try:
        rules = [(p, READ) for p in read_paths] + [(p, WRITE) for p in write_paths]
        rules += [(p, FS_READ_FILE | FS_WRITE_FILE) for p in rw_files]
        rules += [(p, READ | FS_WRITE_FILE | FS_IOCTL_DEV) for p in ioctl_paths]
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a folder this platform does not have
            try:
                if not os.path.isdir(path):
                    access &= _FILE_RIGHTS
                rule = _PathBeneathAttr(allowed_access=access & fs, parent_fd=fd)
                _check(libc.syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                                    ctypes.byref(rule), ctypes.c_uint32(0)), f"landlock_add_rule({path})")
                added.append(path)
            finally:
                os.close(fd)
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
        _check(libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)),
               "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return {"landlock_abi": abi, "tcp_blocked": abi >= 4, "scoped": abi >= 6, "rules": len(added)}


# ---- seccomp ------------------------------------------------------------------------------------------------
# Refused outright (EPERM). Process creation is refused by clone's flags (threads pass); clone3 answers ENOSYS so
# glibc falls back to clone (clone3's flags live in a struct seccomp cannot read). setuid and friends are left to
# the kernel: with no capabilities they cannot change identity, and glibc aborts the process when a set*id call
# it broadcasts to every thread is refused.
_DENY = [
    "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise",
    "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "socket", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "move_mount",
    "open_tree", "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr", "bpf", "perf_event_open",
    "userfaultfd", "keyctl", "add_key", "request_key", "init_module", "finit_module", "delete_module",
    "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "personality",
    "open_by_handle_at", "name_to_handle_at", "capset", "mknod", "mknodat", "ioperm", "iopl",
    "modify_ldt", "lookup_dcookie", "kcmp", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "vhangup", "settimeofday",
    "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname", "uselib", "nfsservctl",
    "fanotify_init", "mbind", "migrate_pages", "move_pages", "set_mempolicy",
]
_CLONE_THREAD = 0x00010000


def seccomp_restrict() -> dict:
    """Install the filter (needs no_new_privs or CAP_SYS_ADMIN; landlock_restrict sets no_new_privs first)."""
    import pyseccomp as sc  # Linux only; libseccomp2 (Debian's apt depends on it, so it is on every Debian image)

    f = sc.SyscallFilter(defaction=sc.ALLOW)
    f.set_attr(sc.Attr.CTL_NNP, 1)
    denied = 0
    for name in _DENY:
        try:
            f.add_rule(sc.ERRNO(errno.EPERM), name)
            denied += 1
        except (RuntimeError, ValueError, OSError):
            pass  # not a syscall on this architecture
    f.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, _CLONE_THREAD, 0))
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    me = os.getpid()
    # signals only to this process (Python's own machinery signals itself); kill(0, ..) and negative pids hit
    # process groups, which may hold the template
    for name, argn in (("kill", 0), ("tgkill", 0)):
        f.add_rule(sc.ERRNO(errno.EPERM), name, sc.Arg(argn, sc.NE, me))
    f.add_rule(sc.ERRNO(errno.EPERM), "tkill")
    f.load()
    return {"seccomp": True, "denied_syscalls": denied}


def seccomp_available() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import pyseccomp  # noqa: F401

        return os.path.exists("/proc/self/status") and _has_seccomp_filter_mode()
    except (ImportError, OSError, RuntimeError):
        return False


def _has_seccomp_filter_mode() -> bool:
    try:
        with open("/proc/self/status") as fh:
            return any(line.startswith("Seccomp:") for line in fh)
    except OSError:
        return False


# ---- capabilities and rlimits -------------------------------------------------------------------------------
class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> int:
    """Drop every capability (bounding set, ambient, then effective/permitted/inheritable). Returns how many
    bounding-set entries were dropped (0 when not root: nothing to drop)."""
    libc = _libc()
    dropped = 0
    for cap in range(64):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
            dropped += 1
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(0x20080522, 0)   # _LINUX_CAPABILITY_VERSION_3: two 32-bit words
    data = (_CapData * 2)()
    _check(libc.syscall(126 if platform.machine() == "x86_64" else 91, ctypes.byref(header), data), "capset")
    return dropped


def non_dumpable() -> None:
    """Make this process non-dumpable: no process of the same user may read its /proc environ or memory or
    ptrace it. The server calls this once, the template too."""
    if sys.platform.startswith("linux"):
        _libc().prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


@dataclass
class RunLimits:
    """The kernel limits of one run (the wall clock is the server's)."""

    cpu_s: int = 30
    memory_bytes: int = 2 << 30      # on top of what the template has mapped when it forks
    file_bytes: int = 64 << 20       # one file's largest size; the scratch folder's total is watched by the server
    open_files: int = 256
    extra: dict = field(default_factory=dict)


def apply_rlimits(lim: RunLimits, vm_now: int) -> None:
    import resource

    soft_cpu = int(sum(resource.getrusage(resource.RUSAGE_SELF)[:2])) + max(1, lim.cpu_s)
    resource.setrlimit(resource.RLIMIT_CPU, (soft_cpu, soft_cpu + 2))
    if lim.memory_bytes > 0 and vm_now > 0:
        resource.setrlimit(resource.RLIMIT_AS, (vm_now + lim.memory_bytes,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim.file_bytes, lim.file_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim.open_files, lim.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


# ---- what this machine offers -------------------------------------------------------------------------------
def probe() -> dict:
    """What the kernel offers here, for the tab and for the choice between whole programs and the fallback."""
    abi = landlock_abi()
    sec = seccomp_available()
    return {"platform": sys.platform, "landlock_abi": abi, "seccomp": sec, "root": hasattr(os, "geteuid")
            and os.geteuid() == 0, "fork": hasattr(os, "fork"), "fence": abi >= 1 and sec}


def describe(p: dict, language: str = "en") -> str:
    """One line for the tab: what fences a program on this machine."""
    if not p.get("fence"):
        return t("sandbox.fence.none", language)
    guarded = [t("sandbox.fence.files", language)]
    if p["landlock_abi"] >= 4:
        guarded.append(t("sandbox.fence.no_tcp", language))
    if p["landlock_abi"] >= 6:
        guarded.append(t("sandbox.fence.signals", language))
    what = t("sandbox.fence.sep", language).join(guarded)     # "files, no TCP" / "文件、禁止 TCP"
    sep = t("sandbox.list_sep", language)
    parts = [t("sandbox.fence.landlock", language, abi=p["landlock_abi"], what=what),
             t("sandbox.fence.seccomp", language)]
    if p.get("root"):
        parts.append(t("sandbox.fence.capabilities", language))
    return sep.join(parts)
