//! Functions: the CFG of a flattened function, op by op, with a debug location on every
//! instruction (the line info the verifier prints back, and what debuggers show). `core` ops are
//! lowered here; each back end lowers its own dialect (`BackEnd::dialect_op`).

use super::{c_name, Gen};
use crate::ir::views::{CoreCmp, KsFunc};
use crate::ir::{Attr, BlockId, OpData, OpFamily, OpId, Opcode, Type, Value, ValueDef};
use crate::vocab::CmpPred;
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::debug_info::{AsDIScope, DIFlags, DIFlagsConstants, DISubprogram, DIType};
use inkwell::module::Linkage;
use inkwell::types::{BasicMetadataTypeEnum, BasicType, FunctionType};
use inkwell::values::{
    BasicMetadataValueEnum, BasicValue, BasicValueEnum, FunctionValue, InstructionValue, IntValue,
    PhiValue, PointerValue,
};
use inkwell::{AddressSpace, AtomicOrdering, AtomicRMWBinOp, IntPredicate};
use std::collections::HashMap;

/// Bytes above which an aggregate local is zeroed by memset rather than a store of its zero value.
const LARGE_AGGREGATE: u64 = 64;

/// The LLVM parameters of `f`: its own, or one context pointer it reads them from.
fn llvm_params(g: &Gen, f: OpId) -> Vec<Type> {
    if g.back_end.arguments_in_context(g.m, f) {
        vec![Type::ptr(Type::u64())]
    } else {
        func_type_of(g.m, f).params
    }
}

fn func_type_of(m: &crate::ir::Module, f: OpId) -> crate::ir::FnType {
    match KsFunc(f).ty(m) {
        Type::Func(ft) => (**ft).clone(),
        _ => crate::ir::FnType {
            params: vec![],
            ret: Type::Void,
        },
    }
}

impl<'m, 'ctx> Gen<'m, 'ctx> {
    pub fn fn_type(&mut self, params: &[Type], ret: &Type) -> FunctionType<'ctx> {
        let ps: Vec<BasicMetadataTypeEnum> =
            params.iter().map(|p| self.llvm_type(p).into()).collect();
        match ret {
            Type::Void => self.ctx.void_type().fn_type(&ps, false),
            t => self.llvm_type(t).fn_type(&ps, false),
        }
    }

    pub fn declare_function(&mut self, f: OpId) {
        let m = self.m;
        let v = KsFunc(f);
        let ft = func_type_of(m, f);
        let program = v.kind(m).is_some();
        let params = llvm_params(self, f);
        let fty = self.fn_type(&params, &ft.ret);
        let name = m.symbol(f).unwrap_or("f").to_string();
        let func = self.module.add_function(
            &self.function_symbol(&name),
            fty,
            Some(if program {
                Linkage::External
            } else {
                Linkage::Internal
            }),
        );
        if let Some(section) = v.section(m) {
            func.set_section(Some(&String::from_utf8_lossy(section)));
        }
        let nounwind = Attribute::get_named_enum_kind_id("nounwind");
        func.add_attribute(
            AttributeLoc::Function,
            self.ctx.create_enum_attribute(nounwind, 0),
        );
        self.back_end.decorate_function(self, f, func);
        self.funcs.insert(name, func);
    }

    pub fn define_function(&mut self, f: OpId) {
        let m = self.m;
        let name = m.symbol(f).unwrap_or("f").to_string();
        let func = self.funcs[&name];
        let ft = func_type_of(m, f);
        let line = m.op(f).loc.line.max(1);
        let file = self
            .files
            .get(m.op(f).loc.file as usize)
            .copied()
            .unwrap_or(self.file);
        let program = KsFunc(f).kind(m).is_some();
        let in_context = self.back_end.arguments_in_context(m, f);
        let ret_di = if ft.ret == Type::Void {
            None
        } else {
            Some(self.di_type(&ft.ret))
        };
        let params = llvm_params(self, f);
        let param_di: Vec<DIType> = params.iter().map(|p| self.di_type(p)).collect();
        let sub = self
            .di
            .create_subroutine_type(file, ret_di, &param_di, DIFlags::PUBLIC);
        let symbol = self.function_symbol(&name);
        let sp = self.di.create_function(
            self.cu.as_debug_info_scope(),
            &c_name(&name),
            Some(&symbol),
            file,
            line,
            sub,
            !program,
            true,
            line,
            DIFlags::PUBLIC | DIFlags::PROTOTYPED,
            true,
        );
        func.set_subprogram(sp);
        let region = m.op(f).regions[0];
        let entry = m.region(region).blocks[0];
        // Every parameter needs a named variable, or the kernel rejects the whole BTF.
        if !in_context {
            for (i, &arg) in m.block(entry).args.iter().enumerate() {
                let pname = m
                    .value(arg)
                    .name
                    .as_deref()
                    .map(c_name)
                    .unwrap_or_else(|| format!("arg{i}"));
                self.di.create_parameter_variable(
                    sp.as_debug_info_scope(),
                    &pname,
                    i as u32 + 1,
                    file,
                    line,
                    param_di[i],
                    true,
                    DIFlags::ZERO,
                );
            }
        } else {
            self.di.create_parameter_variable(
                sp.as_debug_info_scope(),
                "ctx",
                1,
                file,
                line,
                param_di[0],
                true,
                DIFlags::ZERO,
            );
        }
        let builder = self.ctx.create_builder();
        let mut fb = FnGen {
            g: self,
            func,
            sp,
            builder,
            values: HashMap::new(),
            blocks: HashMap::new(),
            phis: HashMap::new(),
            line,
            file: m.op(f).loc.file,
            volatile: Default::default(),
            f,
            in_context,
        };
        fb.body(region);
    }
}

/// Per-function state.
pub(crate) struct FnGen<'g, 'm, 'ctx> {
    pub g: &'g mut Gen<'m, 'ctx>,
    pub func: FunctionValue<'ctx>,
    sp: DISubprogram<'ctx>,
    pub builder: Builder<'ctx>,
    pub values: HashMap<Value, BasicValueEnum<'ctx>>,
    blocks: HashMap<BlockId, BasicBlock<'ctx>>,
    phis: HashMap<Value, PhiValue<'ctx>>,
    /// The function's line and IR file: ops elsewhere (none today) are placed at its line.
    line: u32,
    file: u32,
    /// Slots whose accesses must stay as written (`core.local {volatile}`).
    volatile: std::collections::HashSet<Value>,
    /// The `ks.func` being generated.
    f: OpId,
    /// Its parameters come from a context (`BackEnd::arguments_in_context`).
    in_context: bool,
}

impl<'ctx> FnGen<'_, '_, 'ctx> {
    fn body(&mut self, region: crate::ir::RegionId) {
        let m = self.g.m;
        let blocks = m.region(region).blocks.clone();
        for &b in &blocks {
            let bb = self
                .g
                .ctx
                .append_basic_block(self.func, &format!("bb{}", b.0));
            self.blocks.insert(b, bb);
        }
        self.builder.position_at_end(self.blocks[&blocks[0]]);
        let loc = self.g.di.create_debug_location(
            self.g.ctx,
            self.line,
            0,
            self.sp.as_debug_info_scope(),
            None,
        );
        self.builder.set_current_debug_location(loc);
        for (i, &a) in m.block(blocks[0]).args.iter().enumerate() {
            let v = if self.in_context {
                let back_end = self.g.back_end;
                back_end.context_argument(self, self.f, i, &self.ty(a)).ok()
            } else {
                self.func
                    .get_nth_param(i as u32)
                    .inspect(|p| p.set_name(m.value(a).name.as_deref().unwrap_or("")))
            };
            if let Some(v) = v {
                self.values.insert(a, v);
            }
        }
        // Block arguments are phis at the top of their block; incoming edges are added as the
        // branches are emitted.
        for &b in &blocks[1..] {
            self.builder.position_at_end(self.blocks[&b]);
            for &a in &m.block(b).args {
                let t = self.g.llvm_type(m.value_type(a));
                let phi = self.builder.build_phi(t, "").expect("positioned");
                self.values.insert(a, phi.as_basic_value());
                self.phis.insert(a, phi);
            }
        }
        for &b in &blocks {
            self.builder.position_at_end(self.blocks[&b]);
            for &op in &m.block(b).ops {
                self.locate(op);
                if let Err(e) = self.op(op) {
                    self.g.error(Some(op), e);
                    return;
                }
            }
        }
    }

    /// Sets the debug location of the instructions an op becomes.
    fn locate(&mut self, op: OpId) {
        let l = self.g.m.op(op).loc;
        let (line, col) = if l.line > 0 && l.file == self.file {
            (l.line, l.col)
        } else {
            (self.line, 0)
        };
        let loc = self.g.di.create_debug_location(
            self.g.ctx,
            line,
            col,
            self.sp.as_debug_info_scope(),
            None,
        );
        self.builder.set_current_debug_location(loc);
    }

    pub fn v(&self, x: Value) -> Result<BasicValueEnum<'ctx>, String> {
        self.values
            .get(&x)
            .copied()
            .ok_or_else(|| format!("value {} is used before the back end defined it", x.0))
    }

    pub fn int(&self, x: Value) -> Result<IntValue<'ctx>, String> {
        match self.v(x)? {
            BasicValueEnum::IntValue(i) => Ok(i),
            BasicValueEnum::PointerValue(p) => Ok(self
                .builder
                .build_ptr_to_int(p, self.g.ctx.i64_type(), "")
                .map_err(|e| e.to_string())?),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }

    pub fn ptr(&self, x: Value) -> Result<PointerValue<'ctx>, String> {
        match self.v(x)? {
            BasicValueEnum::PointerValue(p) => Ok(p),
            BasicValueEnum::IntValue(i) => Ok(self
                .builder
                .build_int_to_ptr(i, self.ptr_type(), "")
                .map_err(|e| e.to_string())?),
            other => Err(format!("expected a pointer, found {other:?}")),
        }
    }

    pub fn ptr_type(&self) -> inkwell::types::PointerType<'ctx> {
        self.g.ctx.ptr_type(AddressSpace::default())
    }

    pub fn ty(&self, x: Value) -> Type {
        self.g.m.value_type(x).clone()
    }

    pub fn set(&mut self, d: &OpData, v: impl BasicValue<'ctx>) {
        self.values.insert(d.results[0], v.as_basic_value_enum());
    }

    pub fn i64c(&self, v: u64) -> IntValue<'ctx> {
        self.g.ctx.i64_type().const_int(v, false)
    }

    pub fn i32c(&self, v: u64) -> IntValue<'ctx> {
        self.g.ctx.i32_type().const_int(v, false)
    }

    /// Extends or truncates an integer to `bits`, by the signedness of its IR type.
    pub fn resize(
        &self,
        v: IntValue<'ctx>,
        bits: u32,
        signed: bool,
    ) -> Result<IntValue<'ctx>, String> {
        let to = self.g.int_type(bits);
        if v.get_type().get_bit_width() == bits {
            return Ok(v);
        }
        self.builder
            .build_int_cast_sign_flag(v, to, signed, "")
            .map_err(|e| e.to_string())
    }

    pub fn attr_int(d: &OpData, name: &str) -> i128 {
        d.opcode
            .info()
            .attr_index(name)
            .and_then(|i| match &d.attrs[i] {
                Some(Attr::Int(v)) => Some(*v),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// Branch weights for a conditional branch whose condition is almost always `expected`, as
    /// clang gives `__builtin_expect`: the block placement then makes that path fall through.
    fn expect(
        &self,
        br: inkwell::values::InstructionValue<'ctx>,
        expected: bool,
    ) -> Result<(), String> {
        let ctx = self.g.ctx;
        let (hot, cold) = (
            ctx.i32_type().const_int(2000, false),
            ctx.i32_type().const_int(1, false),
        );
        let (on_true, on_false) = if expected { (hot, cold) } else { (cold, hot) };
        let weights = ctx.metadata_node(&[
            ctx.metadata_string("branch_weights").into(),
            on_true.into(),
            on_false.into(),
        ]);
        br.set_metadata(weights, ctx.get_kind_id("prof"))
            .map_err(|e| e.to_string())
    }

    /// The inverse of a `>=` or `<=` test, for the branch to swap its successors. This is the
    /// form InstCombine would give it, but SimplifyCFG merges adjacent tests into `or`s before
    /// InstCombine runs, and the BPF back end then hides one side of an `or` of two tests on one
    /// value behind `llvm.bpf.passthrough`: a loop's constant cap next to its run-time bound
    /// (`i >= 30 || i >= n`) would survive. With `<` / `>` tests the merge is an `and`, and LLVM
    /// drops the cap when it knows `n <= 30`.
    fn canonical_test(&self, c: IntValue<'ctx>) -> Result<Option<IntValue<'ctx>>, String> {
        let Some(test) = c.as_instruction() else {
            return Ok(None);
        };
        let inverse = match test.get_icmp_predicate() {
            Some(IntPredicate::UGE) => IntPredicate::ULT,
            Some(IntPredicate::ULE) => IntPredicate::UGT,
            Some(IntPredicate::SGE) => IntPredicate::SLT,
            Some(IntPredicate::SLE) => IntPredicate::SGT,
            _ => return Ok(None),
        };
        let (Some(l), Some(r)) = (test.get_operand(0), test.get_operand(1)) else {
            return Ok(None);
        };
        let (Some(l), Some(r)) = (l.value(), r.value()) else {
            return Ok(None);
        };
        let e = |e: inkwell::builder::BuilderError| e.to_string();
        let flipped = match (l, r) {
            (BasicValueEnum::PointerValue(l), BasicValueEnum::PointerValue(r)) => {
                self.builder.build_int_compare(inverse, l, r, "")
            }
            (BasicValueEnum::IntValue(l), BasicValueEnum::IntValue(r)) => {
                self.builder.build_int_compare(inverse, l, r, "")
            }
            _ => return Ok(None),
        }
        .map_err(e)?;
        // (The test itself stays for a later op that may read it; unread, it is dead code.)
        Ok(Some(flipped))
    }

    fn branch_to(
        &mut self,
        from: BasicBlock<'ctx>,
        dest: BlockId,
        args: &[Value],
    ) -> Result<BasicBlock<'ctx>, String> {
        let m = self.g.m;
        for (&param, &arg) in m.block(dest).args.iter().zip(args) {
            let v = self.v(arg)?;
            self.phis[&param].add_incoming(&[(&v, from)]);
        }
        Ok(self.blocks[&dest])
    }

    /// `core.table`: a private constant array and a load clamped into it; past the end is 0.
    fn table_entry(&mut self, d: &OpData) -> Result<IntValue<'ctx>, String> {
        let e = |x: inkwell::builder::BuilderError| x.to_string();
        let Some(Attr::List(values)) = &d.attrs[0] else {
            return Err("table without values".into());
        };
        let ty = self.g.llvm_type(&self.ty(d.results[0])).into_int_type();
        let entries: Vec<IntValue> = values
            .iter()
            .map(|v| match v {
                Attr::Int(n) => ty.const_int(*n as i64 as u64, false),
                _ => ty.const_zero(),
            })
            .collect();
        let init = ty.const_array(&entries);
        let table = self.g.module.add_global(init.get_type(), None, "ks.table");
        table.set_initializer(&init);
        table.set_constant(true);
        table.set_linkage(Linkage::Private);
        if let Some(section) = self.g.back_end.constant_section() {
            table.set_section(Some(section));
        }
        let b = &self.builder;
        let index = self.int(d.operands[0])?;
        let inside = b
            .build_int_compare(IntPredicate::ULT, index, self.i64c(values.len() as u64), "")
            .map_err(e)?;
        let at = b
            .build_select(inside, index, self.i64c(0), "")
            .map_err(e)?
            .into_int_value();
        // SAFETY: `at` is below the array's length.
        let slot = unsafe {
            b.build_in_bounds_gep(
                init.get_type(),
                table.as_pointer_value(),
                &[self.i64c(0), at],
                "",
            )
        }
        .map_err(e)?;
        let entry = b.build_load(ty, slot, "").map_err(e)?.into_int_value();
        Ok(b.build_select(inside, entry, ty.const_zero(), "")
            .map_err(e)?
            .into_int_value())
    }

    /// One op of a lowered function: `core` values, memory and control flow (and the
    /// `ks.global_addr` the lowerings leave), or an op of the back end's own dialect.
    fn op(&mut self, op: OpId) -> Result<(), String> {
        let d = self.g.m.op(op).clone();
        match d.opcode.family() {
            Some(OpFamily::Value) => self.value_op(op, &d),
            Some(OpFamily::Memory) => self.memory_op(&d),
            Some(OpFamily::Control) => self.control_op(&d),
            None if !matches!(d.opcode.info().dialect, "core" | "ks") => {
                let back_end = self.g.back_end;
                back_end.dialect_op(self, &d)
            }
            None => Err(not_lowered(d.opcode)),
        }
    }

    /// Arithmetic, comparisons, constants and conversions: ops that compute a value from values.
    fn value_op(&mut self, op: OpId, d: &OpData) -> Result<(), String> {
        let b = &self.builder;
        let e = |x: inkwell::builder::BuilderError| x.to_string();
        match d.opcode {
            Opcode::CoreConst => {
                let t = self.ty(d.results[0]);
                let Some(Attr::Int(n)) = d.attrs[0] else {
                    return Err("const without value".into());
                };
                let v: BasicValueEnum = match t {
                    Type::Ptr(_) => self.ptr_type().const_null().into(),
                    t => self
                        .g
                        .llvm_type(&t)
                        .into_int_type()
                        .const_int(n as i64 as u64, false)
                        .into(),
                };
                self.set(d, v);
            }
            Opcode::CoreZero => {
                let t = self.g.llvm_type(&self.ty(d.results[0]));
                self.set(d, t.const_zero());
            }
            Opcode::CoreString => {
                let Some(Attr::Str(s)) = &d.attrs[0] else {
                    return Err("string without value".into());
                };
                let Type::Str(n) = self.ty(d.results[0]) else {
                    return Err("string of a non-string type".into());
                };
                let mut bytes = s.clone();
                bytes.resize(n as usize, 0);
                self.set(d, self.g.ctx.const_string(&bytes, false));
            }
            Opcode::CoreAdd
            | Opcode::CoreSub
            | Opcode::CoreMul
            | Opcode::CoreAnd
            | Opcode::CoreOr
            | Opcode::CoreXor => {
                let (l, r) = (self.int(d.operands[0])?, self.int(d.operands[1])?);
                let v = match d.opcode {
                    Opcode::CoreAdd => b.build_int_add(l, r, ""),
                    Opcode::CoreSub => b.build_int_sub(l, r, ""),
                    Opcode::CoreMul => b.build_int_mul(l, r, ""),
                    Opcode::CoreAnd => b.build_and(l, r, ""),
                    Opcode::CoreOr => b.build_or(l, r, ""),
                    _ => b.build_xor(l, r, ""),
                }
                .map_err(e)?;
                self.set(d, v);
            }
            Opcode::CoreDiv | Opcode::CoreRem => {
                let signed = self.ty(d.operands[0]).int().is_some_and(|i| i.signed());
                let v = self.divide(
                    self.int(d.operands[0])?,
                    self.int(d.operands[1])?,
                    signed,
                    d.opcode == Opcode::CoreRem,
                )?;
                self.set(d, v);
            }
            Opcode::CoreShl | Opcode::CoreShr => {
                let l = self.int(d.operands[0])?;
                let it = self
                    .ty(d.operands[0])
                    .int()
                    .ok_or("shift of a non-integer")?;
                let amount = self.resize(self.int(d.operands[1])?, it.bits(), false)?;
                // The amount is taken modulo the width (§7.2), in both worlds.
                let mask = l.get_type().const_int(it.bits() as u64 - 1, false);
                let amount = b.build_and(amount, mask, "").map_err(e)?;
                let v = if d.opcode == Opcode::CoreShl {
                    b.build_left_shift(l, amount, "")
                } else {
                    b.build_right_shift(l, amount, it.signed(), "")
                }
                .map_err(e)?;
                self.set(d, v);
            }
            Opcode::CoreNeg => {
                let v = b.build_int_neg(self.int(d.operands[0])?, "").map_err(e)?;
                self.set(d, v);
            }
            Opcode::CoreNot => {
                let v = b.build_not(self.int(d.operands[0])?, "").map_err(e)?;
                self.set(d, v);
            }
            Opcode::CoreCmp => {
                let signed = self.ty(d.operands[0]).int().is_some_and(|i| i.signed());
                let p = match (CoreCmp(op).pred(self.g.m), signed) {
                    (CmpPred::Eq, _) => IntPredicate::EQ,
                    (CmpPred::Ne, _) => IntPredicate::NE,
                    (CmpPred::Lt, true) => IntPredicate::SLT,
                    (CmpPred::Le, true) => IntPredicate::SLE,
                    (CmpPred::Gt, true) => IntPredicate::SGT,
                    (CmpPred::Ge, true) => IntPredicate::SGE,
                    (CmpPred::Lt, false) => IntPredicate::ULT,
                    (CmpPred::Le, false) => IntPredicate::ULE,
                    (CmpPred::Gt, false) => IntPredicate::UGT,
                    (CmpPred::Ge, false) => IntPredicate::UGE,
                };
                let (l, r) = (self.v(d.operands[0])?, self.v(d.operands[1])?);
                let v = match (l, r) {
                    (BasicValueEnum::PointerValue(l), BasicValueEnum::PointerValue(r)) => {
                        b.build_int_compare(p, l, r, "")
                    }
                    _ => b.build_int_compare(
                        p,
                        self.int(d.operands[0])?,
                        self.int(d.operands[1])?,
                        "",
                    ),
                }
                .map_err(e)?;
                self.set(d, v);
            }
            Opcode::CoreSelect => {
                let c = self.int(d.operands[0])?;
                let v = b
                    .build_select(c, self.v(d.operands[1])?, self.v(d.operands[2])?, "")
                    .map_err(e)?;
                self.set(d, v);
            }
            Opcode::CoreTable => {
                let v = self.table_entry(d)?;
                self.set(d, v);
            }
            Opcode::CoreCast => {
                let v = self.cast(d.operands[0], &self.ty(d.results[0]))?;
                self.set(d, v);
            }
            Opcode::CoreBswap => {
                let x = self.int(d.operands[0])?;
                let v: BasicValueEnum = if x.get_type().get_bit_width() == 8 {
                    x.into()
                } else {
                    let intrinsic = inkwell::intrinsics::Intrinsic::find("llvm.bswap")
                        .ok_or("no llvm.bswap")?;
                    let decl = intrinsic
                        .get_declaration(self.g.module, &[x.get_type().into()])
                        .ok_or("no llvm.bswap declaration")?;
                    b.build_call(decl, &[x.into()], "")
                        .map_err(e)?
                        .try_as_basic_value()
                        .basic()
                        .ok_or("bswap without value")?
                };
                self.set(d, v);
            }
            other => return Err(not_lowered(other)),
        }
        Ok(())
    }

    /// Locals, loads and stores, addresses and atomics.
    fn memory_op(&mut self, d: &OpData) -> Result<(), String> {
        let b = &self.builder;
        let e = |x: inkwell::builder::BuilderError| x.to_string();
        match d.opcode {
            Opcode::CoreLocal => {
                let Some(Attr::Type(t)) = &d.attrs[0] else {
                    return Err("local without type".into());
                };
                let lt = self.g.memory_type(t);
                let slot = b.build_alloca(lt, "").map_err(e)?;
                // Whole 8-byte stack slots: the BPF verifier tracks a spilled scalar's bounds only
                // in a slot at an 8-byte-aligned offset (a u32 loop counter at fp-12 becomes
                // unknown and the loop looks infinite when the optimiser keeps it on the stack).
                if let Some(i) = slot.as_instruction() {
                    i.set_alignment(8).map_err(|x| x.to_string())?;
                }
                // Slots start zeroed (ks.local's contract; the optimiser drops dead stores),
                // except the `uninit` ones, which are written before every read.
                let volatile = matches!(d.attrs.get(2), Some(Some(Attr::Bool(true))));
                // A large aggregate is zeroed by one memset: a store of its zero value is one
                // store per element to LLVM (a 64 KiB array kept InstCombine busy for minutes).
                let size = self.g.size_of(t);
                if matches!(d.attrs.get(3), Some(Some(Attr::Bool(true)))) {
                } else if !volatile && !t.is_scalar() && size > LARGE_AGGREGATE {
                    let zero = self.g.ctx.i8_type().const_zero();
                    b.build_memset(slot, 8, zero, self.i64c(size)).map_err(e)?;
                } else {
                    let init = b.build_store(slot, lt.const_zero()).map_err(e)?;
                    if volatile {
                        init.set_volatile(true).map_err(|x| x.to_string())?;
                    }
                }
                if volatile {
                    self.volatile.insert(d.results[0]);
                }
                self.set(d, slot);
            }
            Opcode::CoreLoad => {
                let t = self.ty(d.results[0]);
                let lt = self.g.memory_type(&t);
                let raw = b.build_load(lt, self.ptr(d.operands[0])?, "").map_err(e)?;
                if let Some(i) = raw.as_instruction_value() {
                    if self.volatile.contains(&d.operands[0]) {
                        i.set_volatile(true).map_err(|x| x.to_string())?;
                    }
                    self.align_aggregate(i, &t, d.operands[0])?;
                }
                // A stored bool is a byte holding 0 or 1: testing it against zero (rather than
                // truncating to bit 0) lets a branch on it test the loaded byte directly.
                let v = if t == Type::Bool {
                    b.build_int_compare(
                        IntPredicate::NE,
                        raw.into_int_value(),
                        self.g.ctx.i8_type().const_zero(),
                        "",
                    )
                    .map_err(e)?
                    .into()
                } else {
                    raw
                };
                self.set(d, v);
            }
            Opcode::CoreStore => {
                let t = self.ty(d.operands[0]);
                if let Some(src) = self.aggregate_source(d) {
                    let size = self.g.size_of(&t);
                    let (to, from) = (self.address_align(d.operands[1]), self.address_align(src));
                    let dst = self.ptr(d.operands[1])?;
                    let src = self.ptr(src)?;
                    b.build_memcpy(dst, to, src, from, self.i64c(size))
                        .map_err(e)?;
                    return Ok(());
                }
                let stored = self.g.m.value(d.operands[0]).def;
                let zero = matches!(stored, ValueDef::Result(z, 0) if self.g.m.op(z).opcode == Opcode::CoreZero);
                let size = self.g.size_of(&t);
                if zero
                    && !t.is_scalar()
                    && size > LARGE_AGGREGATE
                    && !self.volatile.contains(&d.operands[1])
                {
                    let dst = self.ptr(d.operands[1])?;
                    let align = self.address_align(d.operands[1]);
                    let byte = self.g.ctx.i8_type().const_zero();
                    b.build_memset(dst, align, byte, self.i64c(size))
                        .map_err(e)?;
                    return Ok(());
                }
                let mut v = self.v(d.operands[0])?;
                if self.ty(d.operands[0]) == Type::Bool {
                    v = b
                        .build_int_z_extend(v.into_int_value(), self.g.ctx.i8_type(), "")
                        .map_err(e)?
                        .into();
                }
                let st = b.build_store(self.ptr(d.operands[1])?, v).map_err(e)?;
                if self.volatile.contains(&d.operands[1]) {
                    st.set_volatile(true).map_err(|x| x.to_string())?;
                }
                self.align_aggregate(st, &t, d.operands[1])?;
            }
            Opcode::CoreFieldAddr => {
                let Some(Type::Struct(s)) = self.ty(d.operands[0]).pointee().cloned() else {
                    return Err("field of a non-struct".into());
                };
                let Some(Attr::Str(f)) = &d.attrs[0] else {
                    return Err("field_addr without field".into());
                };
                let f = String::from_utf8_lossy(f).into_owned();
                let idx = self
                    .g
                    .field_position(&s, &f)
                    .ok_or_else(|| format!("!{s} has no field {f}"))?;
                let st = self.g.struct_type(&s);
                let v = self
                    .builder
                    .build_struct_gep(st, self.ptr(d.operands[0])?, idx, "")
                    .map_err(e)?;
                self.set(d, v);
            }
            Opcode::CoreElemAddr => {
                let base_t = self.ty(d.operands[0]);
                let index = self.resize(
                    self.int(d.operands[1])?,
                    64,
                    self.ty(d.operands[1]).int().is_some_and(|i| i.signed()),
                )?;
                let base = self.ptr(d.operands[0])?;
                // SAFETY (LLVM): an address computation; the bounds were checked by the passes.
                let v = match base_t.pointee() {
                    Some(t @ (Type::Array(..) | Type::Str(_))) => {
                        let at = self.g.memory_type(t);
                        unsafe { self.builder.build_gep(at, base, &[self.i64c(0), index], "") }
                    }
                    Some(t) => {
                        let et = self.g.memory_type(t);
                        unsafe { self.builder.build_gep(et, base, &[index], "") }
                    }
                    None => return Err("element of a non-pointer".into()),
                }
                .map_err(e)?;
                self.set(d, v);
            }
            Opcode::CorePtrAdd => {
                let off = self.resize(
                    self.int(d.operands[1])?,
                    64,
                    self.ty(d.operands[1]).int().is_some_and(|i| i.signed()),
                )?;
                let v = unsafe {
                    self.builder.build_gep(
                        self.g.ctx.i8_type(),
                        self.ptr(d.operands[0])?,
                        &[off],
                        "",
                    )
                }
                .map_err(e)?;
                self.set(d, v);
            }
            Opcode::CorePtrDiff => {
                let (l, r) = (self.int(d.operands[0])?, self.int(d.operands[1])?);
                let v = b.build_int_sub(l, r, "").map_err(e)?;
                self.set(d, v);
            }
            Opcode::CoreCopy => {
                let n = Self::attr_int(d, "size") as u64;
                let align = |v: Value| {
                    self.ty(v)
                        .pointee()
                        .map_or(1, |t| self.g.align_of(t).max(1))
                };
                b.build_memcpy(
                    self.ptr(d.operands[0])?,
                    align(d.operands[0]),
                    self.ptr(d.operands[1])?,
                    align(d.operands[1]),
                    self.i64c(n),
                )
                .map_err(e)?;
            }
            Opcode::CoreAtomicAdd | Opcode::CoreAtomicFetchAdd => {
                let v = self.int(d.operands[1])?;
                let old = b
                    .build_atomicrmw(
                        AtomicRMWBinOp::Add,
                        self.ptr(d.operands[0])?,
                        v,
                        AtomicOrdering::Monotonic,
                    )
                    .map_err(e)?;
                if d.opcode == Opcode::CoreAtomicFetchAdd {
                    self.set(d, old);
                }
            }
            Opcode::KsGlobalAddr | Opcode::KsConfigAddr => {
                let Some(Attr::Sym(g)) = &d.attrs[0] else {
                    return Err("global_addr without global".into());
                };
                let p = self
                    .g
                    .globals
                    .get(g)
                    .map(|g| g.as_pointer_value())
                    .ok_or_else(|| format!("@{g} has no storage in this object"))?;
                self.set(d, p);
            }
            other => return Err(not_lowered(other)),
        }
        Ok(())
    }

    /// Calls, branches and returns.
    fn control_op(&mut self, d: &OpData) -> Result<(), String> {
        let e = |x: inkwell::builder::BuilderError| x.to_string();
        match d.opcode {
            Opcode::CoreCall => {
                let Some(Attr::Sym(callee)) = &d.attrs[0] else {
                    return Err("call without callee".into());
                };
                let f = *self
                    .g
                    .funcs
                    .get(callee)
                    .ok_or_else(|| format!("@{callee} is not a function of this module"))?;
                let args: Vec<BasicMetadataValueEnum> = d
                    .operands
                    .iter()
                    .map(|&a| self.v(a).map(Into::into))
                    .collect::<Result<_, _>>()?;
                let r = self.builder.build_call(f, &args, "").map_err(e)?;
                if let Some(v) = r.try_as_basic_value().basic() {
                    self.set(d, v);
                }
            }
            Opcode::CoreCallIndirect => {
                let Type::Func(ft) = self.ty(d.operands[0]) else {
                    return Err("call through a non-function value".into());
                };
                let fty = self.g.fn_type(&ft.params, &ft.ret);
                let args: Vec<BasicMetadataValueEnum> = d.operands[1..]
                    .iter()
                    .map(|&a| self.v(a).map(Into::into))
                    .collect::<Result<_, _>>()?;
                let r = self
                    .builder
                    .build_indirect_call(fty, self.ptr(d.operands[0])?, &args, "")
                    .map_err(e)?;
                if let Some(v) = r.try_as_basic_value().basic() {
                    self.set(d, v);
                }
            }
            Opcode::CoreFuncAddr => {
                let Some(Attr::Sym(callee)) = &d.attrs[0] else {
                    return Err("func_addr without callee".into());
                };
                let f = *self
                    .g
                    .funcs
                    .get(callee)
                    .ok_or_else(|| format!("@{callee} is not a function of this module"))?;
                self.set(d, f.as_global_value().as_pointer_value());
            }
            Opcode::CoreBr => {
                let from = self.builder.get_insert_block().ok_or("no block")?;
                let dest = self.branch_to(from, d.successors[0], &d.operands)?;
                self.builder.build_unconditional_branch(dest).map_err(e)?;
            }
            Opcode::CoreCondBr => {
                let from = self.builder.get_insert_block().ok_or("no block")?;
                let t = (Self::attr_int(d, "true_args") as usize).min(d.operands.len() - 1);
                let yes = self.branch_to(from, d.successors[0], &d.operands[1..1 + t])?;
                let no = self.branch_to(from, d.successors[1], &d.operands[1 + t..])?;
                let c = self.int(d.operands[0])?;
                let (c, yes, no, swapped) = match self.canonical_test(c)? {
                    Some(inverse) => (inverse, no, yes, true),
                    None => (c, yes, no, false),
                };
                let br = self
                    .builder
                    .build_conditional_branch(c, yes, no)
                    .map_err(e)?;
                if let Some(Attr::Bool(expected)) = d.attrs.get(1).cloned().flatten() {
                    self.expect(br, expected != swapped)?;
                }
            }
            Opcode::CoreSwitch => {
                let from = self.builder.get_insert_block().ok_or("no block")?;
                let v = self.int(d.operands[0])?;
                let Some(Attr::List(cases)) = &d.attrs[0] else {
                    return Err("switch without cases".into());
                };
                let default = self.branch_to(from, d.successors[0], &[])?;
                let mut arms = Vec::new();
                for (c, &s) in cases.iter().zip(&d.successors[1..]) {
                    let Attr::Int(k) = c else { continue };
                    let bb = self.branch_to(from, s, &[])?;
                    arms.push((v.get_type().const_int(*k as i64 as u64, false), bb));
                }
                self.builder.build_switch(v, default, &arms).map_err(e)?;
            }
            Opcode::CoreRet => {
                match d.operands.first() {
                    Some(&x) => self.builder.build_return(Some(&self.v(x)?)),
                    None => self.builder.build_return(None),
                }
                .map_err(e)?;
            }
            Opcode::CoreUnreachable if self.g.back_end.unreachable_returns() => {
                match self.func.get_type().get_return_type() {
                    Some(t) => self.builder.build_return(Some(&t.const_zero())),
                    None => self.builder.build_return(None),
                }
                .map_err(e)?;
            }
            Opcode::CoreUnreachable => {
                self.builder.build_unreachable().map_err(e)?;
            }
            other => return Err(not_lowered(other)),
        }
        Ok(())
    }

    /// For a store of a struct or array loaded from memory that nothing writes before the store:
    /// the address it was loaded from, so the store copies from there in words (an LLVM
    /// aggregate value of bytes would move byte by byte).
    fn aggregate_source(&self, store: &OpData) -> Option<Value> {
        let m = self.g.m;
        let value = store.operands[0];
        if !matches!(m.value_type(value), Type::Struct(_) | Type::Array(..))
            || self.volatile.contains(&store.operands[1])
        {
            return None;
        }
        let ValueDef::Result(load, 0) = m.value(value).def else {
            return None;
        };
        let from = m.op(load).operands.first().copied()?;
        if m.op(load).opcode != Opcode::CoreLoad || self.volatile.contains(&from) {
            return None;
        }
        let (block, at) = m.position(load)?;
        for &o in &m.block(block).ops[at + 1..] {
            let d = m.op(o);
            if d.opcode == Opcode::CoreStore && d.operands == store.operands {
                return Some(from);
            }
            if !m.is_effect_free(o) {
                return None;
            }
        }
        None
    }

    /// A load or store of a struct or array moves it with the alignment C knows of its address:
    /// LLVM's structs here are packed (their fields sit at declared offsets), which alone would
    /// copy bytewise.
    fn align_aggregate(
        &self,
        access: InstructionValue<'ctx>,
        t: &Type,
        addr: Value,
    ) -> Result<(), String> {
        if matches!(t, Type::Struct(_) | Type::Array(..)) {
            access
                .set_alignment(self.address_align(addr))
                .map_err(|x| x.to_string())?;
        }
        Ok(())
    }

    /// The alignment C assumes of address `p`: its pointee type's, or for a field reached through
    /// a struct pointer, the struct's alignment as far as the field's offset keeps it (the
    /// `u8[6]` at offset 18 of a 2-aligned header is 2-aligned), as clang derives it from the
    /// types — so a MAC address copies as three 16-bit moves, not six byte moves.
    fn address_align(&self, p: Value) -> u32 {
        let m = self.g.m;
        let natural = self
            .ty(p)
            .pointee()
            .map_or(1, |t| self.g.align_of(t).max(1));
        let ValueDef::Result(op, _) = m.value(p).def else {
            return natural;
        };
        let d = m.op(op);
        let (Opcode::CoreFieldAddr, Some(Some(Attr::Str(field)))) = (d.opcode, d.attrs.first())
        else {
            return natural;
        };
        let Some(Type::Struct(s)) = self.ty(d.operands[0]).pointee().cloned() else {
            return natural;
        };
        let Some(decl) = crate::ir::layout::struct_decl(m, &s) else {
            return natural;
        };
        let Some(i) = crate::ir::views::KsStruct(decl)
            .fields(m)
            .iter()
            .position(|(n, _)| n.as_bytes() == &field[..])
        else {
            return natural;
        };
        let Some(&offset) = crate::ir::layout::field_offsets(m, decl).get(i) else {
            return natural;
        };
        let base = self.address_align(d.operands[0]);
        let kept = if offset == 0 {
            base
        } else {
            base.min(1 << offset.trailing_zeros().min(31))
        };
        kept.max(natural)
    }

    /// Integer division and remainder with the eBPF ISA's rules in every case (§6.4): x / 0 is 0,
    /// x % 0 is x, MIN / -1 is MIN. Signed operations become unsigned ones on magnitudes plus sign
    /// fix-ups before BPF CPU v4 (which has `sdiv`/`smod`, as every native target does).
    fn divide(
        &mut self,
        l: IntValue<'ctx>,
        r: IntValue<'ctx>,
        signed: bool,
        rem: bool,
    ) -> Result<BasicValueEnum<'ctx>, String> {
        let b = &self.builder;
        let e = |x: inkwell::builder::BuilderError| x.to_string();
        let t = l.get_type();
        let zero = t.const_zero();
        let is_zero = b
            .build_int_compare(IntPredicate::EQ, r, zero, "")
            .map_err(e)?;
        if signed && self.g.back_end.has_signed_division() {
            // v4 has sdiv/smod; LLVM only needs the two cases its IR leaves undefined kept away:
            // a zero divisor and MIN / -1 (which wraps to MIN, remainder 0).
            let minus_one = t.const_all_ones();
            let is_m1 = b
                .build_int_compare(IntPredicate::EQ, r, minus_one, "")
                .map_err(e)?;
            let unsafe_d = b.build_or(is_zero, is_m1, "").map_err(e)?;
            let safe = b
                .build_select(unsafe_d, t.const_int(1, false), r, "")
                .map_err(e)?
                .into_int_value();
            let q = if rem {
                b.build_int_signed_rem(l, safe, "")
            } else {
                b.build_int_signed_div(l, safe, "")
            }
            .map_err(e)?;
            let on_m1 = if rem {
                zero
            } else {
                b.build_int_neg(l, "").map_err(e)?
            };
            let q = b
                .build_select(is_m1, on_m1, q, "")
                .map_err(e)?
                .into_int_value();
            let on_zero = if rem { l } else { zero };
            return b.build_select(is_zero, on_zero, q, "").map_err(e);
        }
        let (a, d, lneg, rneg) = if signed {
            let lneg = b
                .build_int_compare(IntPredicate::SLT, l, zero, "")
                .map_err(e)?;
            let rneg = b
                .build_int_compare(IntPredicate::SLT, r, zero, "")
                .map_err(e)?;
            let la = b
                .build_select(lneg, b.build_int_neg(l, "").map_err(e)?, l, "")
                .map_err(e)?
                .into_int_value();
            let ra = b
                .build_select(rneg, b.build_int_neg(r, "").map_err(e)?, r, "")
                .map_err(e)?
                .into_int_value();
            (la, ra, Some(lneg), Some(rneg))
        } else {
            (l, r, None, None)
        };
        // Divide by 1 instead of 0 (division by zero is undefined in LLVM IR), then pick.
        let safe = b
            .build_select(is_zero, t.const_int(1, false), d, "")
            .map_err(e)?
            .into_int_value();
        let mut v = if rem {
            b.build_int_unsigned_rem(a, safe, "")
        } else {
            b.build_int_unsigned_div(a, safe, "")
        }
        .map_err(e)?;
        if let (Some(lneg), Some(rneg)) = (lneg, rneg) {
            let flip = if rem {
                lneg
            } else {
                b.build_xor(lneg, rneg, "").map_err(e)?
            };
            v = b
                .build_select(flip, b.build_int_neg(v, "").map_err(e)?, v, "")
                .map_err(e)?
                .into_int_value();
        }
        let on_zero = if rem { l } else { zero };
        b.build_select(is_zero, on_zero, v, "").map_err(e)
    }

    pub fn cast(&mut self, x: Value, to: &Type) -> Result<BasicValueEnum<'ctx>, String> {
        let from = self.ty(x);
        let v = self.v(x)?;
        let b = &self.builder;
        let e = |x: inkwell::builder::BuilderError| x.to_string();
        Ok(match (&from, to) {
            (Type::Ptr(_) | Type::Func(_), Type::Ptr(_) | Type::Func(_)) => v,
            (Type::Ptr(_), Type::Int(_)) => b
                .build_ptr_to_int(
                    v.into_pointer_value(),
                    self.g.memory_type(to).into_int_type(),
                    "",
                )
                .map_err(e)?
                .into(),
            (Type::Int(_), Type::Ptr(_)) => b
                .build_int_to_ptr(v.into_int_value(), self.ptr_type(), "")
                .map_err(e)?
                .into(),
            (Type::Ptr(_), Type::Bool) => b
                .build_is_not_null(v.into_pointer_value(), "")
                .map_err(e)?
                .into(),
            (Type::Int(_), Type::Bool) => b
                .build_int_compare(
                    IntPredicate::NE,
                    v.into_int_value(),
                    v.into_int_value().get_type().const_zero(),
                    "",
                )
                .map_err(e)?
                .into(),
            (Type::Bool, Type::Int(it)) => {
                self.resize(v.into_int_value(), it.bits(), false)?.into()
            }
            (Type::Int(fi), Type::Int(ti)) => self
                .resize(v.into_int_value(), ti.bits(), fi.signed())?
                .into(),
            _ => return Err(format!("no conversion from {from} to {to}")),
        })
    }
}

/// An op of its family this back end never sees: the lowerings remove it first.
fn not_lowered(op: Opcode) -> String {
    format!("`{}` cannot appear in a lowered function", op.name())
}
