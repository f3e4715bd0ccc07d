//! fmod_ret: the injector's BPF LSM programs loaded instead as tracing programs that modify the return value of
//! the kernel function `security_<hook>` (`BPF_PROG_TYPE_TRACING`, `BPF_MODIFY_RETURN`), for kernels where BPF
//! LSM is not active (`bpf` is missing from the LSM list, as on stock Debian kernels) or refused. The verifier
//! allows fmod_ret on every function named `security_*`, with no error-injection list.
//!
//! Written by hand because aya 0.14 cannot do it: its section parser knows no `fmod_ret`, its program types
//! have no `BPF_MODIFY_RETURN` ("not supported yet in Aya"), and newer aya releases need a newer rustc
//! (DESIGN §4). So this module does for one program what `aya::EbpfLoader` does: parse the object with aya-obj
//! (the version aya uses, so it sees the same maps and sections), point the map references at the maps aya has
//! already created for the same object (so that both share the rule tables, the target set, the counters, the
//! ring buffer and the `.rodata`/`.bss` maps holding the globals user space set), link the calls, then
//! BPF_PROG_LOAD and BPF_RAW_TRACEPOINT_OPEN through `sys::bpf_fd`. Not done, unlike aya: loading the object's
//! own BTF (no func/line info is passed: the verifier needs none for these programs, its log just shows no
//! source lines) and rewriting helpers for old kernels (every kernel with trampolines has the ones used).
//!
//! Why the same instructions work: a BPF LSM program on hook `h` and an fmod_ret program on `security_h` both
//! get the function's arguments as u64s in their context, followed by the return value so far (0, or what an
//! earlier program returned), and a nonzero result replaces the call's. [`check_signature`] verifies, before
//! loading, that the kernel's `security_h` takes exactly as many arguments as the program expects, returns an
//! integer, and has the same parameter types as `bpf_lsm_h` where the kernel has BPF LSM. What differs: an
//! fmod_ret program runs before every LSM (a denial skips them all), a BPF LSM program after the LSMs listed
//! before `bpf`.
//!
//! Owns: relocating, loading, attaching. Not: what the programs decide (`ebpf/phoebe-ebpf/src/inject.rs`) or
//! which hooks a plan needs and in which order the mechanisms are tried (`inject.rs`).

use std::{
    collections::HashSet,
    ffi::CStr,
    os::fd::{AsFd, AsRawFd, OwnedFd},
};

use aya::{
    Ebpf,
    maps::{Map, MapData},
};
use aya_obj::generated::{
    bpf_attach_type, bpf_attr, bpf_attr__bindgen_ty_4, bpf_attr__bindgen_ty_11, bpf_cmd, bpf_insn,
    bpf_prog_type,
};

use super::{
    btf::{Btf, Signature},
    sys,
};

/// Why an fmod_ret program could not be loaded or attached.
#[derive(Debug, thiserror::Error)]
pub enum FmodRetError {
    #[error("cannot parse phoebe's eBPF object")]
    Parse(#[source] aya_obj::ParseError),
    #[error("phoebe's eBPF object has a map {0} that aya did not create")]
    MissingMap(String),
    #[error("cannot duplicate the file descriptor of the eBPF map {0}")]
    DupMap(String, #[source] std::io::Error),
    #[error("cannot relocate phoebe's eBPF object against the kernel's BTF")]
    RelocateBtf(#[source] aya_obj::btf::BtfRelocationError),
    #[error("cannot relocate phoebe's eBPF object")]
    Relocate(#[source] aya_obj::relocation::EbpfRelocationError),
    #[error("phoebe's eBPF object has no program {0}")]
    NoProgram(String),
    #[error("the kernel's BTF has no function {0}")]
    NoFunction(String),
    #[error("{function} does not match what the program expects: {why}")]
    Signature { function: String, why: String },
    /// The kernel refused the program before verifying its code (no trampolines, no BTF target, …); the
    /// message quotes the errno and the log's last line.
    #[error("loading fmod_ret/{function}: {}{}", errno_text(.errno), last_line(.log))]
    Refused {
        function: String,
        errno: std::io::Error,
        log: String,
    },
    /// The verifier went through the code and rejected it: a phoebe bug.
    #[error("the verifier rejected {program} as fmod_ret/{function}")]
    Verifier {
        program: String,
        function: String,
        log: String,
    },
    #[error("attaching fmod_ret/{function}: {}", errno_text(.errno))]
    Attach { function: String, errno: std::io::Error },
}

/// `EPERM: Operation not permitted`, as `sys::error::errno_of` says it.
fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).to_string(),
        None => e.to_string(),
    }
}

/// ` (the log's last line)`, or nothing when the log is empty.
fn last_line(log: &str) -> String {
    match log.trim_end().lines().last() {
        Some(line) => format!(" ({})", line.trim()),
        None => String::new(),
    }
}

/// The kernel function an fmod_ret program on LSM hook `hook` attaches to.
pub fn function_of(hook: &str) -> String {
    format!("security_{hook}")
}

/// Checks that `security_<hook>` (`security`) passes the context the program for `hook` reads: `args`
/// arguments, then the return value, an integer; and, when the kernel has `bpf_lsm_<hook>` (`lsm`), the same
/// parameter types as that hook, the one the program was written for.
pub fn check_signature(
    hook: &str,
    args: usize,
    security: Option<&Signature>,
    lsm: Option<&Signature>,
) -> Result<(), FmodRetError> {
    let function = function_of(hook);
    let mismatch = |why: String| FmodRetError::Signature {
        function: function.clone(),
        why,
    };
    let Some(security) = security else {
        return Err(FmodRetError::NoFunction(function.clone()));
    };
    if security.params.len() != args {
        return Err(mismatch(format!(
            "it takes {} arguments, the program reads {args} and then the return value",
            security.params.len()
        )));
    }
    if !security.ret_is_int {
        return Err(mismatch("it does not return an integer".into()));
    }
    if let Some(lsm) = lsm
        && lsm.params != security.params
    {
        return Err(mismatch(format!(
            "its parameters differ from the LSM hook bpf_lsm_{hook}'s"
        )));
    }
    Ok(())
}

/// Did the verifier go through the program's code? Its log ends with `processed N insns …` whenever it ran;
/// N is 0 when the kernel refused the program before looking at the code (its attach target, its type).
pub fn verified_code(log: &str) -> bool {
    log.lines()
        .rev()
        .find_map(|line| {
            line.strip_prefix("processed ")?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .is_some_and(|insns| insns > 0)
}

/// The MapData inside any kind of aya map (aya 0.14 has no accessor for it).
fn map_data(map: &Map) -> &MapData {
    match map {
        Map::Array(m)
        | Map::ArrayOfMaps(m)
        | Map::BloomFilter(m)
        | Map::CgroupArray(m)
        | Map::CgroupStorage(m)
        | Map::CgrpStorage(m)
        | Map::CpuMap(m)
        | Map::DevMap(m)
        | Map::DevMapHash(m)
        | Map::HashMap(m)
        | Map::HashOfMaps(m)
        | Map::InodeStorage(m)
        | Map::LpmTrie(m)
        | Map::LruHashMap(m)
        | Map::PerCpuArray(m)
        | Map::PerCpuCgroupStorage(m)
        | Map::PerCpuHashMap(m)
        | Map::PerCpuLruHashMap(m)
        | Map::PerfEventArray(m)
        | Map::ProgramArray(m)
        | Map::Queue(m)
        | Map::ReusePortSockArray(m)
        | Map::RingBuf(m)
        | Map::SockHash(m)
        | Map::SockMap(m)
        | Map::SkStorage(m)
        | Map::Stack(m)
        | Map::StackTraceMap(m)
        | Map::Unsupported(m)
        | Map::XskMap(m) => m,
    }
}

/// phoebe's eBPF object, relocated against the maps of an `Ebpf` loaded from the same bytes: its programs can be
/// loaded as fmod_ret and share every map with the `Ebpf`'s programs.
pub struct Programs {
    object: aya_obj::Object,
    /// Duplicates of the map descriptors whose numbers the instructions hold: they keep those numbers valid (and
    /// the maps alive) until the programs are loaded, whatever becomes of the `Ebpf`'s own handles.
    _maps: Vec<OwnedFd>,
}

impl Programs {
    /// Parses `object` (the bytes `ebpf` was loaded from) and relocates it as aya did, with `ebpf`'s maps.
    /// Call it before taking maps out of `ebpf`: every map the object defines must still be there.
    pub fn relocate(object: &[u8], ebpf: &Ebpf, kernel: &aya::Btf) -> Result<Self, FmodRetError> {
        let mut obj = aya_obj::Object::parse(object).map_err(FmodRetError::Parse)?;
        obj.relocate_btf(kernel).map_err(FmodRetError::RelocateBtf)?;
        let maps = std::mem::take(&mut obj.maps);
        let mut fds = Vec::with_capacity(maps.len());
        for name in maps.keys() {
            let map = ebpf
                .map(name)
                .ok_or_else(|| FmodRetError::MissingMap(name.clone()))?;
            let fd = map_data(map)
                .fd()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| FmodRetError::DupMap(name.clone(), e))?;
            fds.push((name.as_str(), fd));
        }
        let text_sections: HashSet<usize> = obj.functions.keys().map(|(section, _)| *section).collect();
        obj.relocate_maps(
            fds.iter().map(|(name, fd)| (*name, fd.as_raw_fd(), &maps[*name])),
            &text_sections,
        )
        .map_err(FmodRetError::Relocate)?;
        obj.relocate_calls(&text_sections)
            .map_err(FmodRetError::Relocate)?;
        Ok(Programs {
            object: obj,
            _maps: fds.into_iter().map(|(_, fd)| fd).collect(),
        })
    }

    /// Loads `program` (written for LSM hook `hook`, whose arguments are `args`) as fmod_ret on
    /// `security_<hook>` and attaches it. Dropping the result detaches it.
    pub fn attach(
        &self,
        program: &str,
        hook: &str,
        args: usize,
        kernel: &Btf,
    ) -> Result<Attached, FmodRetError> {
        let function = function_of(hook);
        check_signature(
            hook,
            args,
            kernel.func_signature(&function).as_ref(),
            kernel.func_signature(&format!("bpf_lsm_{hook}")).as_ref(),
        )?;
        let btf_id = kernel
            .func_id(&function)
            .ok_or_else(|| FmodRetError::NoFunction(function.clone()))?;
        let prog = self
            .object
            .programs
            .get(program)
            .ok_or_else(|| FmodRetError::NoProgram(program.into()))?;
        let insns = &self
            .object
            .functions
            .get(&prog.function_key())
            .ok_or_else(|| FmodRetError::NoProgram(program.into()))?
            .instructions;
        let load = |log: &mut [u8]| {
            let mut attr = prog_load_attr(&ProgLoad {
                insns,
                license: &prog.license,
                name: program,
                attach_btf_id: btf_id,
                log,
            });
            // SAFETY: `attr` points at `insns` (the function's instruction vector, `insn_cnt` long), at the
            // NUL-terminated `license` and at `log` (writable, `log_size` bytes), all borrowed for the call.
            unsafe { sys::bpf_fd(bpf_cmd::BPF_PROG_LOAD, &mut attr) }
        };
        let prog_fd = match load(&mut []) {
            Ok(fd) => fd,
            Err(errno) => {
                let log = verifier_log(load);
                return Err(if verified_code(&log) {
                    FmodRetError::Verifier {
                        program: program.into(),
                        function,
                        log,
                    }
                } else {
                    FmodRetError::Refused { function, errno, log }
                });
            }
        };
        let mut attr = raw_tracepoint_attr(prog_fd.as_fd());
        // SAFETY: `attr` holds no pointer (a NULL name attaches a tracing program to its BTF target).
        let link = unsafe { sys::bpf_fd(bpf_cmd::BPF_RAW_TRACEPOINT_OPEN, &mut attr) }
            .map_err(|errno| FmodRetError::Attach { function, errno })?;
        Ok(Attached {
            _link: link,
            _prog: prog_fd,
        })
    }
}

/// An attached fmod_ret program: the link first, so that it is detached before the program is closed.
pub struct Attached {
    _link: OwnedFd,
    _prog: OwnedFd,
}

/// `BPF_LOG_LEVEL1`: the verifier's trace of the failing path, ending with its statistics.
const LOG_LEVEL: u32 = 1;
const LOG_MIN: usize = 64 * 1024;
const LOG_MAX: usize = 16 * 1024 * 1024;

/// The verifier's log for a load that failed, from a second load with a log buffer, grown while the kernel says
/// it is too small (ENOSPC; kernels since 6.4 keep the log's end, older ones its start).
fn verifier_log(load: impl Fn(&mut [u8]) -> std::io::Result<OwnedFd>) -> String {
    let mut size = LOG_MIN;
    loop {
        let mut buf = vec![0u8; size];
        let result = load(&mut buf);
        let too_small = matches!(&result, Err(e) if e.raw_os_error() == Some(libc::ENOSPC));
        if too_small && size < LOG_MAX {
            size *= 8;
            continue;
        }
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        return String::from_utf8_lossy(&buf[..end]).into_owned();
    }
}

/// What one BPF_PROG_LOAD of an fmod_ret program needs.
struct ProgLoad<'a> {
    insns: &'a [bpf_insn],
    license: &'a CStr,
    /// The program's name (the kernel keeps its first 15 bytes).
    name: &'a str,
    /// The BTF id of the kernel function to attach to.
    attach_btf_id: u32,
    /// Where the verifier writes its log (level [`LOG_LEVEL`]); empty for none.
    log: &'a mut [u8],
}

/// The `bpf_attr` of BPF_PROG_LOAD for `load`: a tracing program modifying the return of the vmlinux function
/// `attach_btf_id`. Every other field is zero, as the kernel requires of fields it does not use.
fn prog_load_attr(load: &ProgLoad<'_>) -> bpf_attr {
    // SAFETY: `bpf_attr__bindgen_ty_4` is made of integers, integer arrays and a union of integers: all zeroes
    // is a valid value (and the one the kernel expects of the fields left unset).
    let mut u: bpf_attr__bindgen_ty_4 = unsafe { std::mem::zeroed() };
    u.prog_type = bpf_prog_type::BPF_PROG_TYPE_TRACING as u32;
    u.expected_attach_type = bpf_attach_type::BPF_MODIFY_RETURN as u32;
    u.attach_btf_id = load.attach_btf_id;
    u.insns = load.insns.as_ptr() as u64;
    u.insn_cnt = load.insns.len() as u32;
    u.license = load.license.as_ptr() as u64;
    for (to, from) in u.prog_name.iter_mut().zip(load.name.bytes().take(15)) {
        *to = from as libc::c_char;
    }
    if !load.log.is_empty() {
        u.log_level = LOG_LEVEL;
        u.log_buf = load.log.as_ptr() as u64;
        u.log_size = load.log.len() as u32;
    }
    // SAFETY: as above: a union of integer structs, valid all zeroes.
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    attr.__bindgen_anon_3 = u;
    attr
}

/// The `bpf_attr` of BPF_RAW_TRACEPOINT_OPEN attaching the tracing program `prog` to its BTF target.
fn raw_tracepoint_attr(prog: std::os::fd::BorrowedFd<'_>) -> bpf_attr {
    // SAFETY: integers and a bitfield unit of bytes: all zeroes is valid (a NULL name, no cookie).
    let mut raw: bpf_attr__bindgen_ty_11 = unsafe { std::mem::zeroed() };
    raw.prog_fd = prog.as_raw_fd() as u32;
    // SAFETY: a union of integer structs, valid all zeroes.
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    attr.raw_tracepoint = raw;
    attr
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(params: &[u32], ret_is_int: bool) -> Signature {
        Signature {
            params: params.to_vec(),
            ret: 1,
            ret_is_int,
        }
    }

    #[test]
    fn the_attr_asks_for_fmod_ret_on_the_function() {
        // SAFETY: an all-zero bpf_insn (BPF_LD 0) is a valid value of a plain integer struct.
        let insns: [bpf_insn; 2] = unsafe { std::mem::zeroed() };
        let license = c"Dual MIT/GPL";
        let mut log = [0u8; 64];
        let attr = prog_load_attr(&ProgLoad {
            insns: &insns,
            license,
            name: "phoebe_lsm_open_and_more",
            attach_btf_id: 4242,
            log: &mut log,
        });
        // SAFETY: prog_load_attr wrote this member; it is made of integers, valid for any bits.
        let u = unsafe { attr.__bindgen_anon_3 };
        assert_eq!(u.prog_type, 26, "BPF_PROG_TYPE_TRACING");
        assert_eq!(u.expected_attach_type, 26, "BPF_MODIFY_RETURN");
        assert_eq!(u.attach_btf_id, 4242);
        assert_eq!((u.insns, u.insn_cnt), (insns.as_ptr() as u64, 2));
        assert_eq!(u.license, license.as_ptr() as u64);
        let name: Vec<u8> = u.prog_name.iter().map(|c| *c as u8).collect();
        assert_eq!(&name, b"phoebe_lsm_open\0", "15 bytes and a NUL");
        assert_eq!((u.log_level, u.log_size), (1, 64));
        assert_eq!(u.log_buf, log.as_ptr() as u64);
        // SAFETY: as above.
        let (btf_fd, obj_fd) = (u.prog_btf_fd, unsafe { u.__bindgen_anon_1.attach_btf_obj_fd });
        assert_eq!(
            (btf_fd, obj_fd, u.prog_flags),
            (0, 0, 0),
            "vmlinux, no program BTF"
        );
        let quiet = prog_load_attr(&ProgLoad {
            insns: &insns,
            license,
            name: "p",
            attach_btf_id: 1,
            log: &mut [],
        });
        // SAFETY: as above.
        let u = unsafe { quiet.__bindgen_anon_3 };
        assert_eq!((u.log_level, u.log_size, u.log_buf), (0, 0, 0));
    }

    #[test]
    fn the_attach_attr_names_no_tracepoint() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let attr = raw_tracepoint_attr(file.as_fd());
        // SAFETY: raw_tracepoint_attr wrote this member, made of integers.
        let raw = unsafe { attr.raw_tracepoint };
        assert_eq!(raw.name, 0);
        assert_eq!(raw.prog_fd, file.as_raw_fd() as u32);
    }

    #[test]
    fn signatures_must_match_what_the_program_reads() {
        let open = sig(&[7], true);
        assert!(check_signature("file_open", 1, Some(&open), Some(&open)).is_ok());
        assert!(
            check_signature("file_open", 1, Some(&open), None).is_ok(),
            "no BPF LSM in the kernel"
        );
        let err = |r: Result<(), FmodRetError>| r.unwrap_err().to_string();
        assert_eq!(
            err(check_signature("file_open", 1, None, None)),
            "the kernel's BTF has no function security_file_open"
        );
        assert_eq!(
            err(check_signature(
                "socket_create",
                4,
                Some(&sig(&[1, 1, 1], true)),
                None
            )),
            "security_socket_create does not match what the program expects: it takes 3 arguments, the program \
             reads 4 and then the return value"
        );
        assert!(err(check_signature("file_open", 1, Some(&sig(&[7], false)), None)).contains("integer"));
        assert!(
            err(check_signature(
                "file_open",
                1,
                Some(&open),
                Some(&sig(&[8], true))
            ))
            .contains("bpf_lsm_file_open")
        );
    }

    #[test]
    fn a_refusal_is_told_from_a_rejected_program() {
        assert!(!verified_code(""));
        assert!(!verified_code(
            "security_foo() is not modifiable\nprocessed 0 insns (limit 1000000) max_states_per_insn 0 \
             total_states 0 peak_states 0 mark_read 0\n"
        ));
        assert!(verified_code(
            "0: (b7) r0 = 0\nR0 invalid mem access 'scalar'\nprocessed 12 insns (limit 1000000) \
             max_states_per_insn 0 total_states 1 peak_states 1 mark_read 1\n"
        ));
    }

    #[test]
    fn every_injector_program_is_in_the_object_with_its_license() {
        use phoebe_common::inject::programs as p;
        let object = aya_obj::Object::parse(crate::OBJECT).unwrap();
        for name in [
            p::FILE_OPEN,
            p::FILE_PERMISSION,
            p::SOCKET_CREATE,
            p::SOCKET_BIND,
            p::SOCKET_CONNECT,
            p::SOCKET_LISTEN,
            p::SOCKET_ACCEPT,
            p::SOCKET_SENDMSG,
            p::SOCKET_RECVMSG,
            p::SOCKET_SHUTDOWN,
            phoebe_common::programs::PROBE_LSM,
        ] {
            let program = object.programs.get(name).unwrap_or_else(|| panic!("{name}"));
            // The kernel checks GPL-only helpers (bpf_probe_read_kernel, …) against it.
            assert_eq!(program.license.to_str(), Ok("Dual MIT/GPL"), "{name}");
        }
    }
}
