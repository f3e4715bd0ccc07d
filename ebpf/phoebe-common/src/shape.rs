//! Which register bits make a call's shape (DESIGN §6), for the eBPF observer: per syscall number, at most two
//! register arguments, each masked to the bits `phoebe::model::shape::shape_of` reads. The observer counts a
//! shaped call under those masked values ([`ShapeKey`]); user space rebuilds the registers and calls `shape_of`
//! itself, so shapes have one definition. Path and descriptor components are not in registers: unknown on eBPF.

/// One register argument of a shape: its index (0–5) and the bits kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapeReg {
    /// Argument index, or [`ShapeReg::NONE`].
    pub arg: u8,
    /// Bits kept; [`ShapeReg::PRESENT`] keeps only whether the register is non-zero (stored as 1).
    pub mask: u64,
}

impl ShapeReg {
    pub const NONE: u8 = 0xff;
    /// A mask of 0 would keep nothing: it stands for "non-zero or not" (futex's timeout pointer).
    pub const PRESENT: u64 = 0;
    const UNUSED: ShapeReg = ShapeReg {
        arg: Self::NONE,
        mask: 0,
    };

    /// The stored value of a register under this rule.
    #[inline(always)]
    pub fn keep(self, value: u64) -> u64 {
        if self.mask == Self::PRESENT {
            u64::from(value != 0)
        } else {
            value & self.mask
        }
    }
}

const fn reg(arg: u8, mask: u64) -> ShapeReg {
    ShapeReg { arg, mask }
}

const LOW32: u64 = 0xffff_ffff;
const ALL: u64 = u64::MAX;
// MAP_SHARED | MAP_ANONYMOUS.
const MMAP_CLASS: u64 = 0x01 | 0x20;
const CLONE_THREAD: u64 = 0x0001_0000;
const WNOHANG: u64 = 1;

/// The registers of a shape family.
const fn by_name(name: Family) -> [ShapeReg; 2] {
    match name {
        // The operation (an int) and whether a timeout pointer was given.
        Family::Futex => [reg(1, LOW32), reg(3, ShapeReg::PRESENT)],
        Family::Socket => [reg(0, ALL), reg(1, ALL)],
        Family::Mmap => [reg(3, MMAP_CLASS), ShapeReg::UNUSED],
        Family::Arg2 => [reg(2, ALL), ShapeReg::UNUSED],
        Family::Clone => [reg(0, CLONE_THREAD), ShapeReg::UNUSED],
        Family::Wait4 => [reg(2, WNOHANG), ShapeReg::UNUSED],
        Family::Waitid => [reg(3, WNOHANG), ShapeReg::UNUSED],
        Family::Prctl => [reg(0, ALL), ShapeReg::UNUSED],
        // The request; the descriptor's kind is not in a register.
        Family::Ioctl => [reg(1, ALL), ShapeReg::UNUSED],
        // The operation (an int); the target descriptor's kind is not in a register.
        Family::EpollCtl => [reg(1, LOW32), ShapeReg::UNUSED],
        // The timeout (an int): 0 never sleeps.
        Family::EpollWait => [reg(3, LOW32), ShapeReg::UNUSED],
        Family::Poll => [reg(2, LOW32), ShapeReg::UNUSED],
    }
}

#[derive(Clone, Copy)]
enum Family {
    Futex,
    Socket,
    Mmap,
    /// mprotect, pkey_mprotect (prot), madvise (advice): the third argument.
    Arg2,
    Clone,
    Wait4,
    Waitid,
    Prctl,
    Ioctl,
    EpollCtl,
    /// epoll_wait, epoll_pwait: the timeout, the fourth argument.
    EpollWait,
    /// poll: the timeout, the third argument.
    Poll,
}

/// x86_64: the shape registers of syscall `nr`, `None` for a syscall whose shape has no register component.
#[inline(always)]
pub fn x86_64(nr: u64) -> Option<[ShapeReg; 2]> {
    let family = match nr {
        202 => Family::Futex,
        41 | 53 => Family::Socket,
        9 => Family::Mmap,
        10 | 28 | 329 => Family::Arg2,
        56 => Family::Clone,
        61 => Family::Wait4,
        247 => Family::Waitid,
        157 => Family::Prctl,
        16 => Family::Ioctl,
        233 => Family::EpollCtl,
        232 | 281 => Family::EpollWait,
        7 => Family::Poll,
        _ => return None,
    };
    Some(by_name(family))
}

/// aarch64 (the generic table): as [`x86_64`].
#[inline(always)]
pub fn aarch64(nr: u64) -> Option<[ShapeReg; 2]> {
    let family = match nr {
        98 => Family::Futex,
        198 | 199 => Family::Socket,
        222 => Family::Mmap,
        226 | 233 | 288 => Family::Arg2,
        220 => Family::Clone,
        260 => Family::Wait4,
        95 => Family::Waitid,
        167 => Family::Prctl,
        29 => Family::Ioctl,
        21 => Family::EpollCtl,
        22 => Family::EpollWait,
        _ => return None,
    };
    Some(by_name(family))
}

/// Key of the observer's shape counter map: a syscall, its errno and its shape registers' kept values
/// ([`ShapeReg::keep`], 0 for an unused one). Shaped calls are counted here in addition to the per-syscall maps.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShapeKey {
    pub nr: u32,
    pub errno: u32,
    pub values: [u64; 2],
}

/// Capacity of the shape counter map: distinct (syscall, errno, shape registers) triples.
pub const SHAPES_CAPACITY: u32 = 8192;

/// The register arguments `shape_of` needs, rebuilt from a key: kept values at their indexes, zero elsewhere.
pub fn registers(regs: &[ShapeReg; 2], values: &[u64; 2]) -> [u64; 6] {
    let mut args = [0u64; 6];
    for (reg, value) in regs.iter().zip(values) {
        if let Some(slot) = args.get_mut(usize::from(reg.arg)) {
            *slot = *value;
        }
    }
    args
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `ShapeKey` is `repr(C)`, `Copy`, two `u32`s then two `u64`s (8-aligned right after 8 bytes): every
    // bit pattern is valid and there is no implicit padding.
    unsafe impl aya::Pod for super::ShapeKey {}
}
