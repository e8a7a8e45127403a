//! The `bpf` dialect: helper calls by number, map addresses, tail calls, context fields, dynptr
//! ring buffers, CO-RE field addresses, kfuncs, kernel objects and `bpf_trace_printk`.

use super::back_end::Bpf;
use crate::codegen::llvm::{c_name, FnGen, Gen};
use crate::ir::views::KsMap;
use crate::ir::{Attr, OpData, Opcode, Type, Value, ValueDef};
use crate::vocab::helpers;
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::debug_info::{AsDIScope, DIFlags, DIFlagsConstants, DIType};
use inkwell::module::Linkage;
use inkwell::types::{BasicMetadataTypeEnum, BasicType, BasicTypeEnum};
use inkwell::values::{
    BasicMetadataValueEnum, BasicValueEnum, FunctionValue, IntValue, PointerValue,
};
use inkwell::IntPredicate;

/// `memory(read)`: reads any memory, writes none (LLVM's MemoryEffects encoding).
pub(super) const MEMORY_READ: u64 = 0b01_01_01;

/// `memory(inaccessiblemem: readwrite)`: reads and writes only memory no IR value points to (two
/// bits a location: other, inaccessible, argument).
const INACCESSIBLE_MEM_READ_WRITE: u64 = 0b00_11_00;

/// BPF helper ids the back end calls itself.
const TAIL_CALL: u64 = 12;
const TRACE_PRINTK: u64 = 6;
const TRACE_VPRINTK: u64 = 177;
const LOOP: u64 = 181;
const RINGBUF_RESERVE_DYNPTR: u64 = 198;
const RINGBUF_SUBMIT_DYNPTR: u64 = 199;
const RINGBUF_DISCARD_DYNPTR: u64 = 200;
const DYNPTR_DATA: u64 = 203;

impl<'ctx> Gen<'_, 'ctx> {
    /// A kfunc: an external function in `.ksyms` whose BTF (from a declaration's debug info)
    /// libbpf resolves against the kernel's at load time.
    pub fn kfunc(&mut self, name: &str) -> Result<FunctionValue<'ctx>, String> {
        if let Some(f) = self.funcs.get(name) {
            return Ok(*f);
        }
        let decl = self
            .m
            .lookup_symbol(name)
            .filter(|&d| self.m.op(d).opcode == crate::ir::Opcode::KsExtern)
            .ok_or_else(|| format!("@{name} is not a declared kfunc"))?;
        let Type::Func(ft) = crate::ir::views::KsExtern(decl).ty(self.m).clone() else {
            return Err(format!("@{name} has no function type"));
        };
        Ok(self.extern_kfunc(name, &ft))
    }

    /// Declares a kfunc with a signature (the unit's own externs, or kernel ones ksc calls itself).
    pub fn extern_kfunc(&mut self, name: &str, ft: &crate::ir::FnType) -> FunctionValue<'ctx> {
        if let Some(f) = self.funcs.get(name) {
            return *f;
        }
        let fty = self.fn_type(&ft.params, &ft.ret);
        let f = self
            .module
            .add_function(&c_name(name), fty, Some(Linkage::External));
        f.set_section(Some(".ksyms"));
        let ret_di = if ft.ret == Type::Void {
            None
        } else {
            Some(self.di_type(&ft.ret))
        };
        let param_di: Vec<DIType> = ft.params.iter().map(|p| self.di_type(p)).collect();
        let sub = self
            .di
            .create_subroutine_type(self.file, ret_di, &param_di, DIFlags::PUBLIC);
        let sp = self.di.create_function(
            self.cu.as_debug_info_scope(),
            &c_name(name),
            None,
            self.file,
            0,
            sub,
            false,
            false,
            0,
            DIFlags::PROTOTYPED,
            true,
        );
        f.set_subprogram(sp);
        self.funcs.insert(name.to_string(), f);
        f
    }
}

impl<'ctx> FnGen<'_, '_, 'ctx> {
    /// Calls helper `id` through its number cast to a function pointer (TOOLCHAIN.md).
    fn helper(
        &mut self,
        id: u64,
        args: &[BasicValueEnum<'ctx>],
        ret: Option<BasicTypeEnum<'ctx>>,
    ) -> Result<Option<BasicValueEnum<'ctx>>, String> {
        self.helper_aligned(id, args, ret, None)
    }

    /// The alignment of the memory a `bpf.helper_call` returns, where the kernel sets one: a
    /// lookup's value in a map whose values are aligned, and a ring-buffer record (8-aligned).
    fn returned_align(&self, d: &OpData) -> Option<u32> {
        let m = self.g.m;
        let id = Self::attr_int(d, "id");
        if id == i128::from(helpers::RINGBUF_RESERVE.id) {
            return Some(8);
        }
        if id != i128::from(helpers::MAP_LOOKUP_ELEM.id) {
            return None;
        }
        let ValueDef::Result(op, _) = m.value(*d.operands.first()?).def else {
            return None;
        };
        let Some(Attr::Sym(name)) = m.attr(op, "map") else {
            return None;
        };
        KsMap::of(m, m.lookup_symbol(name)?)?.kind(m).value_align()
    }

    /// A helper call; `ret_align`, the alignment the kernel gives the memory it returns.
    fn helper_aligned(
        &mut self,
        id: u64,
        args: &[BasicValueEnum<'ctx>],
        ret: Option<BasicTypeEnum<'ctx>>,
        ret_align: Option<u32>,
    ) -> Result<Option<BasicValueEnum<'ctx>>, String> {
        let params: Vec<BasicMetadataTypeEnum> = args.iter().map(|a| a.get_type().into()).collect();
        let fty = match ret {
            Some(t) => t.fn_type(&params, false),
            None => self.g.ctx.void_type().fn_type(&params, false),
        };
        let callee = self.i64c(id).const_to_pointer(self.ptr_type());
        let margs: Vec<BasicMetadataValueEnum> = args.iter().map(|&a| a.into()).collect();
        let call = self
            .builder
            .build_indirect_call(fty, callee, &margs, "")
            .map_err(|e| e.to_string())?;
        // Saying what the kernel does with a key lets LLVM keep it in its slot across calls.
        let helper = crate::vocab::helpers::by_id(id as i128);
        for &i in helper.map_or(&[][..], |h| h.reads_only) {
            if args.get(i).is_some_and(|a| a.is_pointer_value()) {
                for kind in ["readonly", "nocapture"] {
                    call.add_attribute(
                        AttributeLoc::Param(i as u32),
                        self.g
                            .ctx
                            .create_enum_attribute(Attribute::get_named_enum_kind_id(kind), 0),
                    );
                }
            }
        }
        if helper.is_some_and(|h| !h.writes_memory) {
            call.add_attribute(
                AttributeLoc::Function,
                self.g.ctx.create_enum_attribute(
                    Attribute::get_named_enum_kind_id("memory"),
                    MEMORY_READ,
                ),
            );
        }
        if let Some(align) = ret_align {
            call.add_attribute(
                AttributeLoc::Return,
                self.g.ctx.create_enum_attribute(
                    Attribute::get_named_enum_kind_id("align"),
                    u64::from(align),
                ),
            );
        }
        Ok(call.try_as_basic_value().basic())
    }

    /// An argument as a BPF helper takes it: pointers as they are, integers widened to 64 bits.
    fn helper_arg(&self, x: Value) -> Result<BasicValueEnum<'ctx>, String> {
        Ok(match (self.v(x)?, self.ty(x)) {
            (BasicValueEnum::IntValue(i), Type::Int(it)) => self.resize(i, 64, it.signed())?.into(),
            (BasicValueEnum::IntValue(i), _) => self.resize(i, 64, false)?.into(),
            (v, _) => v,
        })
    }

    fn map_ptr(&self, d: &OpData, attr: &str) -> Result<PointerValue<'ctx>, String> {
        let info = d.opcode.info();
        let i = info.attr_index(attr).ok_or("no map attribute")?;
        let Some(Attr::Sym(name)) = &d.attrs[i] else {
            return Err("no map attribute".into());
        };
        self.g
            .globals
            .get(name)
            .map(|g| g.as_pointer_value())
            .ok_or_else(|| format!("@{name} is not a map of this object"))
    }

    /// The `bpf` dialect.
    pub fn bpf_op(&mut self, back_end: &Bpf, d: &OpData) -> Result<(), String> {
        let e = |x: inkwell::builder::BuilderError| x.to_string();
        match d.opcode {
            Opcode::BpfHelperCall if self.array_lookup(back_end, d)? => {}
            Opcode::BpfHelperCall => {
                let id = Self::attr_int(d, "id") as u64;
                let args: Vec<BasicValueEnum> = d
                    .operands
                    .iter()
                    .map(|&a| self.helper_arg(a))
                    .collect::<Result<_, _>>()?;
                let ret = d.results.first().map(|&r| self.g.llvm_type(&self.ty(r)));
                let align = self.returned_align(d);
                if let Some(v) = self.helper_aligned(id, &args, ret, align)? {
                    self.set(d, v);
                }
            }
            Opcode::BpfMapAddr => {
                let p = self.map_ptr(d, "map")?;
                self.set(d, p);
            }
            Opcode::BpfTailCall => {
                let map = self.map_ptr(d, "map")?;
                let args = [
                    self.v(d.operands[0])?,
                    map.into(),
                    self.resize(self.int(d.operands[1])?, 32, false)?.into(),
                ];
                self.helper(TAIL_CALL, &args, Some(self.g.ctx.i64_type().into()))?;
            }
            Opcode::BpfCtxLoad => {
                let (off, size) = (
                    Self::attr_int(d, "offset") as u64,
                    Self::attr_int(d, "size") as u32,
                );
                let addr = self.ctx_field_addr(self.ptr(d.operands[0])?, off)?;
                let raw = self
                    .builder
                    .build_load(self.g.int_type(size * 8), addr, "")
                    .map_err(e)?
                    .into_int_value();
                // Packet pointers are 32-bit context fields that the kernel rewrites into pointers.
                let v: BasicValueEnum = match self.ty(d.results[0]) {
                    Type::Ptr(_) => {
                        let wide = self.resize(raw, 64, false)?;
                        self.builder
                            .build_int_to_ptr(wide, self.ptr_type(), "")
                            .map_err(e)?
                            .into()
                    }
                    Type::Bool => self
                        .builder
                        .build_int_compare(IntPredicate::NE, raw, raw.get_type().const_zero(), "")
                        .map_err(e)?
                        .into(),
                    Type::Int(it) => self.resize(raw, it.bits(), false)?.into(),
                    _ => raw.into(),
                };
                self.set(d, v);
            }
            Opcode::BpfCtxStore => {
                let (off, size) = (
                    Self::attr_int(d, "offset") as u64,
                    Self::attr_int(d, "size") as u32,
                );
                let addr = self.ctx_field_addr(self.ptr(d.operands[1])?, off)?;
                let v = self.resize(self.int(d.operands[0])?, size * 8, false)?;
                self.builder.build_store(addr, v).map_err(e)?;
            }
            Opcode::BpfDynptrReserve => {
                let map = self.map_ptr(d, "map")?;
                let size = Self::attr_int(d, "size") as u64;
                let args = [
                    map.into(),
                    self.i32c(size).into(),
                    self.i64c(0).into(),
                    self.v(d.operands[0])?,
                ];
                let v = self
                    .helper(
                        RINGBUF_RESERVE_DYNPTR,
                        &args,
                        Some(self.g.ctx.i64_type().into()),
                    )?
                    .ok_or("no result")?;
                self.set(d, v);
            }
            Opcode::BpfDynptrData => {
                let size = Self::attr_int(d, "size") as u64;
                let args = [
                    self.v(d.operands[0])?,
                    self.i32c(0).into(),
                    self.i32c(size).into(),
                ];
                let v = self
                    .helper(DYNPTR_DATA, &args, Some(self.ptr_type().into()))?
                    .ok_or("no result")?;
                self.set(d, v);
            }
            Opcode::BpfDynptrSubmit | Opcode::BpfDynptrDiscard => {
                let id = if d.opcode == Opcode::BpfDynptrSubmit {
                    RINGBUF_SUBMIT_DYNPTR
                } else {
                    RINGBUF_DISCARD_DYNPTR
                };
                self.helper(id, &[self.v(d.operands[0])?, self.i64c(0).into()], None)?;
            }
            Opcode::BpfLoop => {
                let Some(Attr::Sym(cb)) = d.attrs.first().cloned().flatten() else {
                    return Err("loop without callback".into());
                };
                let f = *self
                    .g
                    .funcs
                    .get(&cb)
                    .ok_or_else(|| format!("@{cb} is not a kernel function"))?;
                let args = [
                    self.resize(self.int(d.operands[0])?, 32, false)?.into(),
                    f.as_global_value().as_pointer_value().into(),
                    self.v(d.operands[1])?,
                    self.i64c(0).into(),
                ];
                let v = self
                    .helper(LOOP, &args, Some(self.g.ctx.i64_type().into()))?
                    .ok_or("no result")?;
                self.set(d, v);
            }
            Opcode::BpfPrintk => self.printk(d)?,
            Opcode::BpfOpaque => {
                let v = self.v(d.operands[0])?;
                let ty = v.get_type();
                let asm_ty = ty.fn_type(&[ty.into()], false);
                let asm = self.g.ctx.create_inline_asm(
                    asm_ty,
                    String::new(),
                    "=r,0".into(),
                    true,
                    false,
                    None,
                    false,
                );
                let r = self
                    .builder
                    .build_indirect_call(asm_ty, asm, &[v.into()], "")
                    .map_err(e)?;
                // It hides a value, not memory: with no memory effects declared LLVM would take
                // the asm for a write anywhere and read every context field again after it
                // (`ctx->data_end` at each read through a throwing helper). Yet it must write
                // something, memory nothing else reaches: two opaque copies of one value are
                // each tested on their own, and LLVM would merge a pure asm's copies (those of
                // inlined calls too) and carry what the first test taught it to the second.
                // And it stays where it is (`sideeffect`): the pointer formed from a checked copy
                // must be formed after the check, where machine LICM would hoist an invariant
                // asm and the add after it out of a loop.
                // It always returns (`willreturn`): what follows it runs whenever it does, so
                // a load the loop would repeat after it may be hoisted, as without it.
                r.add_attribute(
                    AttributeLoc::Function,
                    self.g.ctx.create_enum_attribute(
                        Attribute::get_named_enum_kind_id("memory"),
                        INACCESSIBLE_MEM_READ_WRITE,
                    ),
                );
                r.add_attribute(
                    AttributeLoc::Function,
                    self.g
                        .ctx
                        .create_enum_attribute(Attribute::get_named_enum_kind_id("willreturn"), 0),
                );
                self.set(
                    d,
                    r.try_as_basic_value()
                        .basic()
                        .ok_or("opaque without value")?,
                );
            }
            Opcode::BpfPassthrough => {
                let v = self.passthrough(back_end, self.int(d.operands[0])?)?;
                self.set(d, BasicValueEnum::IntValue(v));
            }
            Opcode::BpfBarrier => {
                let asm_ty = self.g.ctx.void_type().fn_type(&[], false);
                let asm = self.g.ctx.create_inline_asm(
                    asm_ty,
                    String::new(),
                    "~{memory}".into(),
                    true,
                    false,
                    None,
                    false,
                );
                self.builder
                    .build_indirect_call(asm_ty, asm, &[], "")
                    .map_err(e)?;
            }
            Opcode::BpfCoreFieldAddr => {
                let v = self.core_field_addr(d)?;
                self.set(d, v);
            }
            Opcode::BpfCoreElemAddr => {
                let v = self.core_elem_addr(d)?;
                self.set(d, v);
            }
            Opcode::BpfKfuncCall => {
                let Some(Attr::Sym(callee)) = d.attrs[0].clone() else {
                    return Err("kfunc call without callee".into());
                };
                let f = self.g.kfunc(&callee)?;
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
            Opcode::BpfObjNew => {
                let Some(Attr::Type(t)) = d.attrs[0].clone() else {
                    return Err("obj_new without type".into());
                };
                let id = self.local_type_id(back_end, &t)?;
                let void_ptr = Type::ptr(Type::Void);
                let f = self.g.extern_kfunc(
                    "bpf_obj_new_impl",
                    &crate::ir::FnType {
                        params: vec![Type::u64(), void_ptr.clone()],
                        ret: void_ptr,
                    },
                );
                let r = self
                    .builder
                    .build_call(f, &[id.into(), self.ptr_type().const_null().into()], "")
                    .map_err(e)?;
                self.set(
                    d,
                    r.try_as_basic_value()
                        .basic()
                        .ok_or("bpf_obj_new without value")?,
                );
            }
            Opcode::BpfObjDrop => {
                let void_ptr = Type::ptr(Type::Void);
                let f = self.g.extern_kfunc(
                    "bpf_obj_drop_impl",
                    &crate::ir::FnType {
                        params: vec![void_ptr.clone(), void_ptr],
                        ret: Type::Void,
                    },
                );
                let p = self.ptr(d.operands[0])?;
                self.builder
                    .build_call(f, &[p.into(), self.ptr_type().const_null().into()], "")
                    .map_err(e)?;
            }
            other => {
                return Err(format!(
                    "`{}` cannot appear in a lowered kernel function",
                    other.name()
                ))
            }
        }
        Ok(())
    }

    /// The address of a context field, marked with `llvm.preserve.static.offset` so that every
    /// access stays one load or store at a constant offset from the context pointer itself: the
    /// verifier refuses a context access through a moved pointer ("dereference of modified ctx
    /// ptr"), and unmarked, LLVM may share `ctx + 4` between two `data_end` reads on different
    /// paths through a phi, which leaves the offset in a register.
    fn ctx_field_addr(
        &mut self,
        ctx: PointerValue<'ctx>,
        offset: u64,
    ) -> Result<PointerValue<'ctx>, String> {
        let intrinsic = inkwell::intrinsics::Intrinsic::find("llvm.preserve.static.offset")
            .ok_or("no llvm.preserve.static.offset in this LLVM")?;
        let decl = intrinsic
            .get_declaration(self.g.module, &[])
            .ok_or("no llvm.preserve.static.offset declaration")?;
        let marked = self
            .builder
            .build_call(decl, &[ctx.into()], "")
            .map_err(|e| e.to_string())?
            .try_as_basic_value()
            .basic()
            .ok_or("llvm.preserve.static.offset without a value")?
            .into_pointer_value();
        unsafe {
            self.builder
                .build_gep(self.g.ctx.i8_type(), marked, &[self.i64c(offset)], "")
        }
        .map_err(|e| e.to_string())
    }

    /// A CO-RE relocatable field address (TOOLCHAIN.md): `llvm.preserve.struct.access.index` on
    /// the base, which carries `elementtype(<struct>)`, and the call carries
    /// `!llvm.preserve.access.index` naming the struct's debug type. LLVM turns it into a field
    /// relocation that libbpf patches against the running kernel's BTF, by struct and field name.
    fn core_field_addr(&mut self, d: &OpData) -> Result<BasicValueEnum<'ctx>, String> {
        use inkwell::types::AnyType;
        use inkwell::values::AsValueRef;
        let Some(Attr::Sym(strukt)) = d.attrs[0].clone() else {
            return Err("core_field_addr without struct".into());
        };
        let Some(Attr::Str(field)) = d.attrs[1].clone() else {
            return Err("core_field_addr without field".into());
        };
        let field = String::from_utf8_lossy(&field).into_owned();
        let gep_index = self
            .g
            .field_position(&strukt, &field)
            .ok_or_else(|| format!("!{strukt} has no field {field}"))?;
        let di_index = self
            .g
            .debug_member_index(&strukt, &field)
            .ok_or_else(|| format!("!{strukt} has no field {field}"))?;
        let st = self.g.struct_type(&strukt);
        let di = self.g.di_type(&Type::Struct(strukt.as_str().into()));
        let ptr = self.ptr_type();
        let intrinsic = inkwell::intrinsics::Intrinsic::find("llvm.preserve.struct.access.index")
            .ok_or("no CO-RE intrinsic in this LLVM")?;
        let decl = intrinsic
            .get_declaration(self.g.module, &[ptr.into(), ptr.into()])
            .ok_or("no CO-RE intrinsic declaration")?;
        let base = self.ptr(d.operands[0])?;
        let call = self
            .builder
            .build_call(
                decl,
                &[
                    base.into(),
                    self.i32c(gep_index as u64).into(),
                    self.i32c(di_index as u64).into(),
                ],
                "",
            )
            .map_err(|e| e.to_string())?;
        let elementtype = Attribute::get_named_enum_kind_id("elementtype");
        call.add_attribute(
            AttributeLoc::Param(0),
            self.g
                .ctx
                .create_type_attribute(elementtype, st.as_any_type_enum()),
        );
        self.set_access_index(call.as_value_ref(), di);
        call.try_as_basic_value()
            .basic()
            .ok_or_else(|| "CO-RE access without a value".into())
    }

    /// A CO-RE array element at a constant index (`llvm.preserve.array.access.index`, dimension 0),
    /// so LLVM folds field and element into one relocated offset of the access.
    fn core_elem_addr(&mut self, d: &OpData) -> Result<BasicValueEnum<'ctx>, String> {
        use inkwell::types::AnyType;
        use inkwell::values::AsValueRef;
        let Some(Attr::Int(index)) = d.attrs[0] else {
            return Err("core_elem_addr without index".into());
        };
        let array = self
            .ty(d.operands[0])
            .pointee()
            .cloned()
            .ok_or("core_elem_addr of a non-pointer")?;
        let at = self.g.memory_type(&array);
        let di = self.g.di_type(&array);
        let ptr = self.ptr_type();
        let intrinsic = inkwell::intrinsics::Intrinsic::find("llvm.preserve.array.access.index")
            .ok_or("no CO-RE intrinsic in this LLVM")?;
        let decl = intrinsic
            .get_declaration(self.g.module, &[ptr.into(), ptr.into()])
            .ok_or("no CO-RE intrinsic declaration")?;
        let base = self.ptr(d.operands[0])?;
        let call = self
            .builder
            .build_call(
                decl,
                &[
                    base.into(),
                    self.i32c(0).into(),
                    self.i32c(index as u64).into(),
                ],
                "",
            )
            .map_err(|e| e.to_string())?;
        let elementtype = Attribute::get_named_enum_kind_id("elementtype");
        call.add_attribute(
            AttributeLoc::Param(0),
            self.g
                .ctx
                .create_type_attribute(elementtype, at.as_any_type_enum()),
        );
        self.set_access_index(call.as_value_ref(), di);
        call.try_as_basic_value()
            .basic()
            .ok_or_else(|| "CO-RE access without a value".into())
    }

    /// Tags a CO-RE intrinsic call (or BTF id query) with the debug type it relocates against.
    fn set_access_index(
        &self,
        call: llvm_sys::prelude::LLVMValueRef,
        di: inkwell::debug_info::DIType<'ctx>,
    ) {
        let kind = self.g.ctx.get_kind_id("llvm.preserve.access.index");
        // SAFETY: the call and the debug type belong to this context; inkwell has no safe way to
        // use a debug type as a metadata operand.
        unsafe {
            use inkwell::context::AsContextRef;
            let md = llvm_sys::core::LLVMMetadataAsValue(self.g.ctx.as_ctx_ref(), di.as_mut_ptr());
            llvm_sys::core::LLVMSetMetadata(call, kind, md);
        }
    }

    /// `llvm.bpf.passthrough` of `v`: `v` to instruction selection, an unknown value before.
    fn passthrough(&mut self, back_end: &Bpf, v: IntValue<'ctx>) -> Result<IntValue<'ctx>, String> {
        let intrinsic = inkwell::intrinsics::Intrinsic::find("llvm.bpf.passthrough")
            .ok_or("no llvm.bpf.passthrough in this LLVM")?;
        let ty = v.get_type();
        let decl = intrinsic
            .get_declaration(self.g.module, &[ty.into(), ty.into()])
            .ok_or("no llvm.bpf.passthrough declaration")?;
        let seq = self.i32c(u64::from(back_end.next_passthrough_seq()));
        self.builder
            .build_call(decl, &[seq.into(), v.into()], "")
            .map_err(|e| e.to_string())?
            .try_as_basic_value()
            .basic()
            .map(|r| r.into_int_value())
            .ok_or_else(|| "passthrough without value".into())
    }

    /// The BTF id of a type in the program's own BTF (`llvm.bpf.btf.type.id`, local flavour), as
    /// `bpf_obj_new` wants it; libbpf fixes it up when the program's BTF is loaded.
    fn local_type_id(&mut self, back_end: &Bpf, t: &Type) -> Result<IntValue<'ctx>, String> {
        use inkwell::values::AsValueRef;
        let di = self.g.di_type(t);
        let intrinsic = inkwell::intrinsics::Intrinsic::find("llvm.bpf.btf.type.id")
            .ok_or("no llvm.bpf.btf.type.id in this LLVM")?;
        let decl = intrinsic
            .get_declaration(self.g.module, &[])
            .ok_or("no llvm.bpf.btf.type.id declaration")?;
        let seq = self.i32c(u64::from(back_end.next_type_id_seq()));
        let call = self
            .builder
            .build_call(decl, &[seq.into(), self.i64c(0).into()], "")
            .map_err(|e| e.to_string())?;
        self.set_access_index(call.as_value_ref(), di);
        Ok(call
            .try_as_basic_value()
            .basic()
            .ok_or("type id without value")?
            .into_int_value())
    }

    /// `print` in kernel code: bpf_trace_printk for up to 3 arguments, bpf_trace_vprintk beyond,
    /// with a newline appended and each conversion given the 64-bit width the arguments travel in.
    fn printk(&mut self, d: &OpData) -> Result<(), String> {
        let e = |x: inkwell::builder::BuilderError| x.to_string();
        let Some(Attr::Str(fmt)) = &d.attrs[0] else {
            return Err("print without format".into());
        };
        let (text, convs) = crate::codegen::format::widen_format(fmt);
        let mut bytes = text.clone();
        bytes.push(b'\n');
        let len = bytes.len() as u64 + 1;
        let init = self.g.ctx.const_string(&bytes, true);
        let g = self.g.module.add_global(init.get_type(), None, "");
        g.set_initializer(&init);
        g.set_constant(true);
        g.set_linkage(Linkage::Private);
        g.set_section(Some(".rodata"));
        let fmt_ptr = g.as_pointer_value();
        let mut args = Vec::new();
        for (i, &a) in d.operands.iter().enumerate() {
            let conv = convs.get(i).copied().unwrap_or(b'd');
            args.push(match (self.v(a)?, self.ty(a)) {
                (BasicValueEnum::IntValue(v), Type::Int(it)) => self
                    .resize(
                        v,
                        64,
                        matches!(conv, b'd' | b'i') || (it.signed() && conv == b'c'),
                    )?
                    .into(),
                (BasicValueEnum::IntValue(v), _) => self.resize(v, 64, false)?.into(),
                (v, _) => v,
            });
        }
        let ret = Some(self.g.ctx.i64_type().into());
        if args.len() <= 3 {
            let mut all: Vec<BasicValueEnum> = vec![fmt_ptr.into(), self.i32c(len).into()];
            all.extend(args);
            self.helper(TRACE_PRINTK, &all, ret)?;
        } else {
            let at = self.g.ctx.i64_type().array_type(args.len() as u32);
            let slot = self.builder.build_alloca(at, "").map_err(e)?;
            for (i, a) in args.iter().enumerate() {
                let p = unsafe {
                    self.builder
                        .build_gep(at, slot, &[self.i64c(0), self.i64c(i as u64)], "")
                }
                .map_err(e)?;
                let v: BasicValueEnum = match a {
                    BasicValueEnum::PointerValue(pv) => self
                        .builder
                        .build_ptr_to_int(*pv, self.g.ctx.i64_type(), "")
                        .map_err(e)?
                        .into(),
                    v => *v,
                };
                self.builder.build_store(p, v).map_err(e)?;
            }
            let all = [
                fmt_ptr.into(),
                self.i32c(len).into(),
                slot.into(),
                self.i32c(args.len() as u64 * 8).into(),
            ];
            self.helper(TRACE_VPRINTK, &all, ret)?;
        }
        if let Some(&r) = d.results.first() {
            self.values
                .insert(r, self.g.ctx.i32_type().const_zero().into());
        }
        Ok(())
    }
}
