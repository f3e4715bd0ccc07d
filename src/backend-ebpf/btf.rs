//! Just enough of the kernel's BTF (`/sys/kernel/btf/vmlinux`) to find what the eBPF programs cannot learn
//! themselves: a struct member's byte offset (`task_struct.tgid`) and how many arguments a raw tracepoint passes
//! (`sched_process_exit` gained `group_dead` in Linux 6.16). Rust eBPF has no CO-RE relocations, so user space reads
//! these and hands them to the programs as globals. Pure parsing; no I/O but [`Btf::from_sys_fs`].
//!
//! Lean on purpose: phoebe asks two or three questions once, at start-up, of a 5 MiB blob with ~150 000 types.
//! The blob is mapped where the kernel allows it (Linux ≥ 6.16), read otherwise; parsing keeps it as it is and one
//! offset per type (to follow a type id); a question walks the types and compares names in place. No type table,
//! no name index, no copied strings.

const MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BtfError {
    #[error("not BTF data (bad magic or truncated header)")]
    Header,
    #[error("BTF type {0} is truncated or of unknown kind {1}")]
    Type(usize, u32),
}

/// The fixed part of one type record.
#[derive(Debug, Clone, Copy)]
struct TypeRec {
    kind: u32,
    vlen: u32,
    kind_flag: bool,
    size_or_type: u32,
    /// Where its trailing records start in the type section.
    extra: usize,
}

/// The bytes of a blob: mapped from the kernel's file, or read into memory.
enum Blob {
    Mapped(super::sys::MappedFile),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Blob {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Blob::Mapped(map) => map.as_slice(),
            Blob::Owned(data) => data,
        }
    }
}

/// A BTF blob (little-endian, as on every machine phoebe runs on) and where each of its types starts.
pub struct Btf {
    data: Blob,
    /// The type section: `data[types.0..types.1]`.
    types: (usize, usize),
    /// The string section: `data[strings.0..strings.1]`.
    strings: (usize, usize),
    /// Offset of type id `i + 1` in the type section (id 0 is `void` and has no record).
    offsets: Vec<u32>,
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at.checked_add(4)?)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl Btf {
    pub fn from_sys_fs() -> std::io::Result<Self> {
        let path = std::path::Path::new("/sys/kernel/btf/vmlinux");
        let data = match super::sys::MappedFile::open(path) {
            Ok(map) => Blob::Mapped(map),
            Err(_) => Blob::Owned(std::fs::read(path)?),
        };
        Btf::from_blob(data).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    pub fn parse(data: impl Into<Vec<u8>>) -> Result<Self, BtfError> {
        Btf::from_blob(Blob::Owned(data.into()))
    }

    fn from_blob(data: Blob) -> Result<Self, BtfError> {
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(BtfError::Header);
        }
        let field = |i: usize| {
            u32_at(&data, 4 + 4 * i)
                .map(|v| v as usize)
                .ok_or(BtfError::Header)
        };
        let (hdr_len, type_off, type_len, str_off, str_len) =
            (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off).ok_or(BtfError::Header)?;
            let end = start.checked_add(len).ok_or(BtfError::Header)?;
            if end > data.len() {
                return Err(BtfError::Header);
            }
            Ok((start, end))
        };
        let types = section(type_off, type_len)?;
        let strings = section(str_off, str_len)?;
        let type_data = &data[types.0..types.1];
        let mut offsets = Vec::new();
        let mut at = 0;
        while at < type_data.len() {
            let id = offsets.len() + 1;
            let info = u32_at(type_data, at + 4).ok_or(BtfError::Type(id, 0))?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let extra_len = match kind {
                1 | 14 | 17 => 4,             // int, var, decl_tag
                3 => 12,                      // array
                4 | 5 | 15 | 19 => 12 * vlen, // struct, union, datasec, enum64
                6 | 13 => 8 * vlen,           // enum, func_proto
                2 | 7..=12 | 16 | 18 => 0,
                other => return Err(BtfError::Type(id, other)),
            };
            offsets.push(at as u32);
            at += 12 + extra_len;
            if at > type_data.len() {
                return Err(BtfError::Type(id, kind));
            }
        }
        Ok(Btf {
            data,
            types,
            strings,
            offsets,
        })
    }

    fn type_data(&self) -> &[u8] {
        &self.data[self.types.0..self.types.1]
    }

    fn string(&self, off: u32) -> &[u8] {
        let strings = &self.data[self.strings.0..self.strings.1];
        let rest = strings.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// The record of type `id` (0, `void`, has none).
    fn get(&self, id: u32) -> Option<TypeRec> {
        let at = *self.offsets.get((id as usize).checked_sub(1)?)? as usize;
        let t = self.type_data();
        let info = u32_at(t, at + 4)?;
        Some(TypeRec {
            kind: (info >> 24) & 0x1f,
            vlen: info & 0xffff,
            kind_flag: info >> 31 != 0,
            size_or_type: u32_at(t, at + 8)?,
            extra: at + 12,
        })
    }

    /// The first type of `kind` named `name`.
    fn find(&self, kind: u32, name: &str) -> Option<TypeRec> {
        let t = self.type_data();
        self.offsets.iter().find_map(|&at| {
            let at = at as usize;
            let info = u32_at(t, at + 4)?;
            if (info >> 24) & 0x1f != kind {
                return None;
            }
            let name_off = u32_at(t, at)?;
            if name_off == 0 || self.string(name_off) != name.as_bytes() {
                return None;
            }
            Some(TypeRec {
                kind,
                vlen: info & 0xffff,
                kind_flag: info >> 31 != 0,
                size_or_type: u32_at(t, at + 8)?,
                extra: at + 12,
            })
        })
    }

    /// Byte offset of `member` in `struct name` (not a bitfield), looked for in the anonymous structs and unions
    /// it holds too (`struct file`'s `f_path` sits in one since Linux 6.18).
    pub fn member_offset(&self, name: &str, member: &str) -> Option<u32> {
        let t = self.find(KIND_STRUCT, name)?;
        self.member_in(t, member, 0)
    }

    /// Byte offset of `member` in the struct or union `t`, through anonymous members nested at most 8 deep.
    fn member_in(&self, t: TypeRec, member: &str, depth: u32) -> Option<u32> {
        (0..t.vlen as usize).find_map(|i| {
            let at = t.extra + 12 * i;
            let name_off = u32_at(self.type_data(), at)?;
            let raw = u32_at(self.type_data(), at + 8)?;
            let bits = if t.kind_flag { raw & 0x00ff_ffff } else { raw };
            if bits % 8 != 0 {
                return None;
            }
            if name_off != 0 {
                return (self.string(name_off) == member.as_bytes()).then_some(bits / 8);
            }
            let inner = self.get(u32_at(self.type_data(), at + 4)?)?;
            if depth >= 8 || !matches!(inner.kind, KIND_STRUCT | KIND_UNION) {
                return None;
            }
            Some(bits / 8 + self.member_in(inner, member, depth + 1)?)
        })
    }

    /// How many arguments the raw tracepoint `tp` passes to a program (its `TP_PROTO`), from the kernel's
    /// `btf_trace_<tp>` typedef (a pointer to a prototype whose first parameter is the context).
    pub fn tracepoint_args(&self, tp: &str) -> Option<usize> {
        let typedef = self.find(KIND_TYPEDEF, &format!("btf_trace_{tp}"))?;
        let ptr = self.get(typedef.size_or_type)?;
        if ptr.kind != KIND_PTR {
            return None;
        }
        let proto = self.get(ptr.size_or_type)?;
        (proto.kind == KIND_FUNC_PROTO).then(|| (proto.vlen as usize).saturating_sub(1))
    }
}

// fmod_ret (`fmod_ret.rs`): the kernel function a program attaches to, and its signature.
impl Btf {
    /// The type id of the kernel function `name` (a `FUNC`): what BPF_PROG_LOAD takes as `attach_btf_id`.
    pub fn func_id(&self, name: &str) -> Option<u32> {
        let t = self.type_data();
        self.offsets.iter().enumerate().find_map(|(i, &at)| {
            let at = at as usize;
            let info = u32_at(t, at + 4)?;
            let name_off = u32_at(t, at)?;
            ((info >> 24) & 0x1f == KIND_FUNC && name_off != 0 && self.string(name_off) == name.as_bytes())
                .then_some(i as u32 + 1)
        })
    }

    /// The signature of the kernel function `name`: its parameters' type ids and its return type's, each with
    /// typedefs and modifiers (const, volatile, restrict) left as they are.
    pub fn func_signature(&self, name: &str) -> Option<Signature> {
        let func = self.get(self.func_id(name)?)?;
        let proto = self.get(func.size_or_type)?;
        if proto.kind != KIND_FUNC_PROTO {
            return None;
        }
        let params = (0..proto.vlen as usize)
            .map(|i| u32_at(self.type_data(), proto.extra + 8 * i + 4))
            .collect::<Option<Vec<u32>>>()?;
        Some(Signature {
            params,
            ret: proto.size_or_type,
            ret_is_int: self.is_int(proto.size_or_type),
        })
    }

    /// Is type `id` an integer of at most 8 bytes, through typedefs and modifiers?
    fn is_int(&self, mut id: u32) -> bool {
        for _ in 0..16 {
            let Some(t) = self.get(id) else {
                return false;
            };
            match t.kind {
                KIND_INT => return (1..=8).contains(&t.size_or_type),
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT => id = t.size_or_type,
                _ => return false,
            }
        }
        false
    }
}

/// A kernel function's signature, as type ids of the same BTF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub params: Vec<u32>,
    pub ret: u32,
    /// The return type is an integer (what a program's return value replaces).
    pub ret_is_int: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made BTF blob: `struct task { int pid; int tgid; }` (with kind_flag member offsets), and
    /// `typedef void (*btf_trace_x)(void *, int, int)`.
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0task\0pid\0tgid\0btf_trace_x\0path\0__path\0file\0flags\0".to_vec();
        let s = |name: &str| {
            let pos = strings
                .windows(name.len() + 1)
                .position(|w| &w[..name.len()] == name.as_bytes() && w[name.len()] == 0);
            pos.unwrap() as u32
        };
        let mut t: Vec<u32> = Vec::new();
        // 1: int (4 bytes)
        t.extend([s("int"), 1 << 24, 4, 32]);
        // 2: struct task, kind_flag, 2 members
        t.extend([
            s("task"),
            (1 << 31) | (4 << 24) | 2,
            8,
            s("pid"),
            1,
            0,
            s("tgid"),
            1,
            32,
        ]);
        // 3: func_proto returning void with 3 params (void *, int, int)
        t.extend([0, (13 << 24) | 3, 0, 0, 0, 0, 1, 0, 1]);
        // 4: ptr to 3
        t.extend([0, 2 << 24, 3]);
        // 5: typedef btf_trace_x -> 4
        t.extend([s("btf_trace_x"), 8 << 24, 4]);
        // 6: union { int path; int __path; } (anonymous), 7: struct file { int flags; union 6; }
        t.extend([0, (5 << 24) | 2, 4, s("path"), 1, 0, s("__path"), 1, 0]);
        t.extend([s("file"), (4 << 24) | 2, 8, s("flags"), 1, 0, 0, 6, 32]);
        super::func_tests::blob(&t, &strings)
    }

    #[test]
    fn finds_member_offsets_and_tracepoint_arity() {
        let btf = Btf::parse(sample()).unwrap();
        assert_eq!(btf.member_offset("task", "pid"), Some(0));
        assert_eq!(btf.member_offset("task", "tgid"), Some(4));
        assert_eq!(btf.member_offset("task", "comm"), None);
        assert_eq!(btf.member_offset("nothing", "pid"), None);
        // Through an anonymous union.
        assert_eq!(btf.member_offset("file", "flags"), Some(0));
        assert_eq!(btf.member_offset("file", "path"), Some(4));
        assert_eq!(btf.member_offset("file", "__path"), Some(4));
        assert_eq!(btf.member_offset("file", "nothing"), None);
        assert_eq!(btf.tracepoint_args("x"), Some(2));
        assert_eq!(btf.tracepoint_args("y"), None);
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(
            Btf::parse(&b"not btf at all, clearly not"[..]).err(),
            Some(BtfError::Header)
        );
        let mut truncated = sample();
        truncated[12] = 0xff; // type_len far beyond the data
        assert!(Btf::parse(truncated).is_err());
    }

    #[test]
    fn reads_this_kernels_btf_when_there_is_one() {
        let Ok(btf) = Btf::from_sys_fs() else { return };
        let tgid = btf
            .member_offset("task_struct", "tgid")
            .expect("task_struct.tgid");
        let pid = btf.member_offset("task_struct", "pid").expect("task_struct.pid");
        assert_eq!(tgid, pid + 4, "tgid follows pid in task_struct");
        assert!(matches!(btf.tracepoint_args("sched_process_exit"), Some(1 | 2)));
        assert_eq!(btf.tracepoint_args("sys_exit"), Some(2));
    }
}

#[cfg(test)]
mod func_tests {
    use super::*;

    /// A BTF blob from raw type records and a string section.
    pub(super) fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let types: Vec<u8> = types.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut out = Vec::new();
        out.extend(MAGIC.to_le_bytes());
        out.extend([1u8, 0]);
        for v in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend(v.to_le_bytes());
        }
        out.extend(types);
        out.extend(strings);
        out
    }

    /// `int security_x(struct file *, const int)`, `int bpf_lsm_x(struct file *, const int)`,
    /// `void *not_int(int)`.
    fn functions() -> Btf {
        let strings = b"\0int\0file\0security_x\0bpf_lsm_x\0not_int\0".to_vec();
        let s = |name: &str| {
            let needle = [name.as_bytes(), b"\0"].concat();
            strings.windows(needle.len()).position(|w| w == needle).unwrap() as u32
        };
        let mut t: Vec<u32> = Vec::new();
        t.extend([s("int"), KIND_INT << 24, 4, 32]); // 1: int
        t.extend([s("file"), KIND_STRUCT << 24, 0]); // 2: struct file {}
        t.extend([0, KIND_PTR << 24, 2]); // 3: struct file *
        t.extend([0, KIND_CONST << 24, 1]); // 4: const int
        t.extend([0, (KIND_FUNC_PROTO << 24) | 2, 1, 0, 3, 0, 4]); // 5: int (struct file *, const int)
        t.extend([s("security_x"), KIND_FUNC << 24, 5]); // 6
        t.extend([s("bpf_lsm_x"), KIND_FUNC << 24, 5]); // 7
        t.extend([0, KIND_PTR << 24, 0]); // 8: void *
        t.extend([0, (KIND_FUNC_PROTO << 24) | 1, 8, 0, 1]); // 9: void *(int)
        t.extend([s("not_int"), KIND_FUNC << 24, 9]); // 10
        Btf::parse(blob(&t, &strings)).unwrap()
    }

    #[test]
    fn finds_function_ids_and_signatures() {
        let btf = functions();
        assert_eq!(btf.func_id("security_x"), Some(6));
        assert_eq!(btf.func_id("bpf_lsm_x"), Some(7));
        assert_eq!(btf.func_id("file"), None, "a struct is not a function");
        assert_eq!(btf.func_id("nothing"), None);
        let sig = btf.func_signature("security_x").unwrap();
        assert_eq!(
            sig,
            Signature {
                params: vec![3, 4],
                ret: 1,
                ret_is_int: true
            }
        );
        assert_eq!(btf.func_signature("bpf_lsm_x"), Some(sig));
        let not_int = btf.func_signature("not_int").unwrap();
        assert_eq!((not_int.params.len(), not_int.ret_is_int), (1, false));
    }

    #[test]
    fn finds_this_kernels_security_functions_when_there_is_btf() {
        let Ok(btf) = Btf::from_sys_fs() else { return };
        let open = btf
            .func_signature("security_file_open")
            .expect("security_file_open");
        assert_eq!(open.params.len(), 1);
        assert!(open.ret_is_int);
        let create = btf
            .func_signature("security_socket_create")
            .expect("security_socket_create");
        assert_eq!(create.params.len(), 4);
    }
}
