"""The filesystem a pod sees: the machine's files read-only, its own /proc, /sys, /dev, /tmp and
/run, and nothing of the host's sockets, secrets or other pods.

There is no container image here, so pods run programs installed on the machine and must see
its files; but they run as root, so what they see is made read-only and the dangerous parts
are hidden, the way a container runtime hides /proc/kcore and friends:

- every mount read-only, recursively (mount_setattr), so no pod can change the machine's files;
- /run, /var/run, /tmp, /var/tmp and /dev/shm are fresh tmpfs: no D-Bus, systemd, OVS or
  k8semu control socket, no other cluster's run directory, no netns files to enter;
- /dev holds only null, zero, full, random, urandom, tty and the pod's own devpts (no disks);
- /proc is the pod's own (its PID namespace), with /proc/sys and friends read-only and
  /proc/kcore, /proc/keys and the like masked (runc's maskedPaths and readonlyPaths);
- /sys is a fresh sysfs of the pod's network namespace, read-only (cgroupfs is not in it);
- /root, /home, /etc/shadow, /etc/gshadow, /etc/sudoers(.d) and /etc/ssh are masked; k8semu's
  own code and interpreter are bound back read-only where they live, for the image programs;
- the pod's directory (its containers' working directories) is bound read-write at
  ``/run/k8semu/pod``, and the system pods' shared data read-only at ``/run/k8semu/shared/<name>``;
- /etc/hosts, /etc/resolv.conf and /etc/hostname are the pod's own files (kubelet's mounts);
- the pod's volumes at their mountPaths (the ServiceAccount's token, the cluster's CA and the
  namespace among them: the ``kube-api-access-*`` volume admission adds, model/podadmission.py) (``podmounts``: new mount points get a place without
  touching the machine's files).

Runs in the forked child that becomes the pod's PID 1, in its fresh mount namespace; each step
is a system call, so a pod's whole view costs about a millisecond.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from emulator.model.naming import POD_DIR_IN_POD as POD_DIR, SHARED_IN_POD as SHARED_DIR
from emulator.runtime import linux, podmounts

NETNS_DIR = "/run/netns"
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
PROC_READONLY = ("/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/fs", "/proc/irq")
PROC_MASKED_FILES = ("/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/sched_debug",
                     "/proc/kallsyms")
PROC_MASKED_DIRS = ("/proc/acpi", "/proc/scsi")
MASKED_DIRS = ("/root", "/home", "/etc/ssh", "/etc/sudoers.d", "/var/lib/openvswitch", "/etc/openvswitch")
MASKED_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers")
FRESH = ("/run", "/tmp", "/var/tmp", "/dev/shm") + MASKED_DIRS  # podfs puts a tmpfs on each


@dataclass(frozen=True)
class PodView:
    """What a pod's filesystem is made of (host paths, all chosen by k8semu, none by a manifest)."""
    pod_dir: str  # the pod's folder in the run directory: bound read-write at POD_DIR
    etc_files: dict[str, str]  # /etc/hosts etc. -> host file in the pod's folder
    shared: dict[str, str]  # name -> host folder bound read-only at SHARED_DIR/<name>
    keep: tuple[str, ...] = ()  # host folders to show again under masked ones (k8semu's code, its venv)
    volumes: tuple[dict, ...] = ()  # runtime.volumes.Mount dicts: the pod's volumeMounts (podmounts)


def _bind(source: str, target: str, readonly: bool, recursive: bool = False) -> None:
    linux.mount(source, target, None, linux.MS_BIND | (linux.MS_REC if recursive else 0))
    if readonly:
        linux.mount(None, target, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | linux.MS_NOSUID
                    | linux.MS_NODEV)


def _tmpfs(target: str, options: str = "mode=755,size=64m", readonly: bool = False) -> None:
    flags = linux.MS_NOSUID | linux.MS_NODEV | (linux.MS_RDONLY if readonly else 0)
    linux.mount("tmpfs", target, "tmpfs", flags, options)


def _mkdirs(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def _touch(path: str) -> None:
    _mkdirs(os.path.dirname(path))
    if not os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))


def _readonly_everything() -> None:
    try:
        linux.make_tree_readonly("/")
    except OSError:  # before Linux 5.12: remount each mount point
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4].encode().decode("unicode_escape") for line in f]
        for point in sorted(set(points), key=len):
            try:
                linux.mount(None, point, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)
            except OSError:
                pass


def _open_dir(path: str) -> int:
    return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def setup(view: PodView) -> None:
    """Build the pod's filesystem in the current (new, private) mount namespace. The caller is
    the pod's PID 1 in its own PID and network namespaces, still with every capability.

    Raises:
        OSError: a mount failed (the sandbox fails; the pod reports it).
    """
    # private: nothing the machine mounts later reaches the pod (and nothing the pod mounts
    # leaves it); the other namespaces' files under /run/netns are let go, so that no pod keeps
    # another pod's network namespace alive
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    try:
        linux.umount(NETNS_DIR, linux.MNT_DETACH)
    except OSError:
        pass  # not mounted here (the shim's template namespace has none)
    # Hold what must be shown again before masking hides it.
    held = {"pod": _open_dir(view.pod_dir)}
    for name, source in view.shared.items():
        held[f"shared/{name}"] = _open_dir(source)
    keep = [(i, source) for i, source in enumerate(view.keep) if os.path.isdir(source)]  # before /tmp etc. hide them
    for i, source in keep:
        held[f"keep/{i}"] = _open_dir(source)
    etc_fds = {target: os.open(source, os.O_PATH | os.O_CLOEXEC) for target, source in view.etc_files.items()}
    devices = {name: os.open(f"/dev/{name}", os.O_PATH | os.O_CLOEXEC) for name in DEVICES if os.path.exists(f"/dev/{name}")}
    volumes = podmounts.hold(list(view.volumes), FRESH)
    podmounts.shadow(volumes)  # mount points on the machine's files, before anything is masked
    _readonly_everything()
    # /proc of the pod's PID namespace, with runc's read-only and masked paths
    linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    fd_path = "/proc/self/fd/{}".format
    for path in PROC_READONLY:
        if os.path.exists(path):
            _bind(path, path, readonly=True)
    for path in PROC_MASKED_FILES:
        if os.path.exists(path):
            linux.mount(fd_path(devices["null"]), path, None, linux.MS_BIND)
    for path in PROC_MASKED_DIRS:
        if os.path.isdir(path):
            _tmpfs(path, "size=0", readonly=True)
    # /sys of the pod's network namespace (cgroupfs and the host's devices are not in it). New
    # mounts go on top of the host's (which stay underneath, attached, unreachable without
    # CAP_SYS_ADMIN): a detached mount could no longer be the source of the binds below.
    linux.mount("sysfs", "/sys", "sysfs", linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    # /dev: a few character devices, the pod's own pts and shm
    _tmpfs("/dev", "mode=755,size=64k")
    for name, fd in devices.items():
        _touch(f"/dev/{name}")
        linux.mount(fd_path(fd), f"/dev/{name}", None, linux.MS_BIND)
    _mkdirs("/dev/pts")
    linux.mount("devpts", "/dev/pts", "devpts", linux.MS_NOSUID | linux.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
    os.symlink("pts/ptmx", "/dev/ptmx")
    for link, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"/dev/{link}")
    _mkdirs("/dev/shm")
    _tmpfs("/dev/shm", "mode=1777,size=64m")
    linux.mount(None, "/dev", None, linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID, "mode=755,size=64k")
    # scratch space and run state of the pod's own
    for path in ("/tmp", "/var/tmp"):
        if os.path.isdir(path) and not os.path.islink(path):
            _tmpfs(path, "mode=1777,size=256m")
    _tmpfs("/run", "mode=755,size=64m")
    _mkdirs(POD_DIR)
    linux.mount(fd_path(held["pod"]), POD_DIR, None, linux.MS_BIND)
    # the bind copies the read-only flag of the host's mount it comes from: make this one writable
    linux.mount(None, POD_DIR, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_NOSUID | linux.MS_NODEV)
    for name in view.shared:
        _mkdirs(f"{SHARED_DIR}/{name}")
        _bind(fd_path(held[f"shared/{name}"]), f"{SHARED_DIR}/{name}", readonly=True)
    _mkdirs("/run/lock")
    # secrets of the machine, hidden; k8semu's own code shown again where it lives
    for path in MASKED_DIRS:
        if os.path.isdir(path) and not os.path.islink(path):
            _tmpfs(path, "mode=755,size=64k")
    for i, source in keep:  # under /home, /root or /tmp (a checkout anywhere): shown again
        try:
            _mkdirs(source)
        except OSError:
            continue  # not under a masked folder: it is visible already
        _bind(fd_path(held[f"keep/{i}"]), source, readonly=True)
    podmounts.attach(volumes)
    for path in MASKED_DIRS:
        if os.path.isdir(path) and not os.path.islink(path):
            linux.mount(None, path, None, linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV,
                        "mode=755,size=64k")
    for path in MASKED_FILES:
        if os.path.isfile(path):
            linux.mount(fd_path(devices["null"]), path, None, linux.MS_BIND)
    # kubelet's files: /etc/hosts, /etc/resolv.conf, /etc/hostname
    for target, fd in etc_fds.items():
        real = os.path.realpath(target)
        if not os.path.exists(real):  # e.g. resolv.conf -> /run/systemd/...: now under our /run
            _touch(real)
        if stat.S_ISREG(os.stat(real).st_mode):
            linux.mount(fd_path(fd), real, None, linux.MS_BIND)
    for fd in list(held.values()) + list(etc_fds.values()) + list(devices.values()):
        os.close(fd)
    os.chdir("/")
