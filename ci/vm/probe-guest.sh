#!/bin/sh
# Runs inside the guest (ci/vm/probe): what this kernel allows for phoebe's backends, one `probe: KEY: VALUE` line
# each. busybox sh only; nothing here needs an eBPF toolchain.
say() { echo "probe: $1: $2"; }
yes_no() { if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }

say kernel "$(uname -r)"
say lsm "$(cat /sys/kernel/security/lsm 2>/dev/null || echo '(no securityfs)')"
case ,$(cat /sys/kernel/security/lsm 2>/dev/null), in *,bpf,*) say bpf_lsm_active yes ;; *) say bpf_lsm_active no ;; esac
say btf_vmlinux "$(yes_no test -s /sys/kernel/btf/vmlinux)"
say proc_config_gz "$(yes_no test -e /proc/config.gz)"
say bpffs "$(yes_no grep -q ' /sys/fs/bpf bpf ' /proc/mounts)"
say bpf_jit_enable "$(cat /proc/sys/net/core/bpf_jit_enable 2>/dev/null || echo '?')"
say unprivileged_bpf_disabled "$(cat /proc/sys/kernel/unprivileged_bpf_disabled 2>/dev/null || echo '?')"
say bpf_lsm_hooks "$(grep -c ' bpf_lsm_' /proc/kallsyms) symbols"
# A BPF trampoline (lsm, fentry, fexit, fmod_ret) attaches through ftrace: the target must be traceable.
t=/sys/kernel/tracing
if [ -r $t/available_filter_functions ]; then
    for f in bpf_lsm_file_open security_file_open do_sys_openat2; do
        say "ftrace_$f" "$(yes_no grep -q "^$f\$" $t/available_filter_functions)"
    done
else
    say ftrace "no tracefs"
fi
if [ -w $t/kprobe_events ] && echo 'p:phoebe_probe do_sys_openat2' >>$t/kprobe_events 2>/dev/null; then
    say kprobe_do_sys_openat2 yes
    echo '-:phoebe_probe' >>$t/kprobe_events
else
    say kprobe_do_sys_openat2 no
fi
mkdir -p /sys/kernel/debug && mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
if [ -r /sys/kernel/debug/error_injection/list ]; then
    say error_injection_list "$(wc -l </sys/kernel/debug/error_injection/list) functions"
else
    say error_injection_list "absent (no CONFIG_FUNCTION_ERROR_INJECTION)"
fi
say seccomp_actions "$(cat /proc/sys/kernel/seccomp/actions_avail 2>/dev/null || echo '?')"
if phoebe inject -q --backend seccomp --fault getppid:EPERM:p=0 -- true 2>/tmp/err; then
    say phoebe_seccomp yes
else
    say phoebe_seccomp "no: $(head -n 1 /tmp/err)"
fi
if phoebe inject -q --backend ptrace --fault getppid:EPERM:p=0 -- true 2>/tmp/err; then
    say phoebe_ptrace yes
else
    say phoebe_ptrace "no: $(head -n 1 /tmp/err)"
fi
