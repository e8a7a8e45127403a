//! Constant values (§6.2, §12.2): what the checker folds while it types expressions, so range
//! checks (E0310), constant division (E0319) and shift amounts (E0320) see the folded value.

use super::types::{IntTy, Ty};
use crate::syntax::ast::BinOp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConstValue {
    Int(i128),
    Bool(bool),
    Char(u8),
    Str(Vec<u8>),
}

impl ConstValue {
    pub fn as_int(&self) -> Option<i128> {
        match self {
            ConstValue::Int(v) => Some(*v),
            ConstValue::Char(c) => Some(*c as i128),
            _ => None,
        }
    }
}

pub enum FoldError {
    DivByZero,
    ShiftRange,
}

/// Folds `a op b` computed in type `ty` (the unified operand type), wrapping like run-time code.
pub fn fold_binary(
    op: BinOp,
    a: &ConstValue,
    b: &ConstValue,
    ty: &Ty,
) -> Result<Option<ConstValue>, FoldError> {
    if let (ConstValue::Bool(x), ConstValue::Bool(y)) = (a, b) {
        return Ok(Some(ConstValue::Bool(match op {
            BinOp::And | BinOp::BitAnd => *x && *y,
            BinOp::Or | BinOp::BitOr => *x || *y,
            BinOp::BitXor | BinOp::Ne => x != y,
            BinOp::Eq => x == y,
            _ => return Ok(None),
        })));
    }
    let (Some(x), Some(y)) = (a.as_int(), b.as_int()) else {
        return Ok(None);
    };
    let it = match ty {
        Ty::Int(i) => *i,
        _ => IntTy::I64,
    };
    let cmp = |r: bool| Ok(Some(ConstValue::Bool(r)));
    let v = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x.wrapping_mul(y),
        BinOp::Div | BinOp::Rem if y == 0 => return Err(FoldError::DivByZero),
        BinOp::Div => x / y,
        BinOp::Rem => x % y,
        BinOp::BitAnd => x & y,
        BinOp::BitOr => x | y,
        BinOp::BitXor => x ^ y,
        BinOp::Shl | BinOp::Shr if y < 0 || y >= it.bits() as i128 => {
            return Err(FoldError::ShiftRange)
        }
        BinOp::Shl => x << y,
        BinOp::Shr => x >> y,
        BinOp::Eq => return cmp(x == y),
        BinOp::Ne => return cmp(x != y),
        BinOp::Lt => return cmp(x < y),
        BinOp::Le => return cmp(x <= y),
        BinOp::Gt => return cmp(x > y),
        BinOp::Ge => return cmp(x >= y),
        BinOp::And | BinOp::Or => return Ok(None),
    };
    Ok(Some(ConstValue::Int(it.wrap(v))))
}
