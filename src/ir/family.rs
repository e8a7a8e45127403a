//! The families the back ends dispatch `core` ops (and the `ks` ops that reach them) by, declared
//! once so each back end's `value_op`, `memory_op` and `control_op` agree on what they handle.

use super::Opcode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpFamily {
    /// Constants, arithmetic, comparisons and conversions: a value from values.
    Value,
    /// Locals, loads and stores, addresses, atomics, allocation.
    Memory,
    /// Calls, branches, returns, output.
    Control,
}

impl Opcode {
    /// The family a back end handles this op in; `None` for ops of other dialects and for ops
    /// lowered away before code generation.
    pub fn family(self) -> Option<OpFamily> {
        use Opcode::*;
        Some(match self {
            CoreConst | CoreZero | CoreString | CoreAdd | CoreSub | CoreMul | CoreAnd | CoreOr
            | CoreXor | CoreDiv | CoreRem | CoreShl | CoreShr | CoreNeg | CoreNot | CoreCmp
            | CoreSelect | CoreTable | CoreCast | CoreBswap => OpFamily::Value,
            CoreLocal | CoreLoad | CoreStore | CoreFieldAddr | CoreElemAddr | CorePtrAdd
            | CorePtrDiff | CoreCopy | CoreAtomicAdd | CoreAtomicFetchAdd | KsGlobalAddr
            | KsConfigAddr | KsNew | KsDelete => OpFamily::Memory,
            CoreCall | CoreCallIndirect | CoreFuncAddr | CoreBr | CoreCondBr | CoreSwitch
            | CoreRet | CoreUnreachable | KsPrint => OpFamily::Control,
            _ => return None,
        })
    }
}
