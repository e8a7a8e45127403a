//! Lookups in array maps as pure calls, so that LLVM shares them.
//!
//! An array (or per-CPU array) map's entry for a key is always the same pointer: entries are never
//! added or removed. A lookup therefore depends on nothing but its key. ksc's lowering looks an
//! entry up where each function reads it — a config read in a helper and again in its caller, an
//! element tested in one function and read in the next — where a C writer looks it up once and
//! keeps the pointer. While LLVM optimises, each such lookup is a call of a `memory(none)`,
//! never-inlined function of the key value, which GVN merges wherever a call with the same key
//! dominates another (across inlined helpers too). After the pipeline the calls are inlined back
//! into the helper call they stand for.
//!
//! Only lookups that may meet another with the same key take the stand-in ([`shareable_lookups`]):
//! a different shape of IR changes LLVM's block sinking and register allocation, for better or
//! worse, and a lookup nothing can share gains nothing from it.

use super::back_end::Bpf;
use super::ops::MEMORY_READ;
use crate::codegen::llvm::{FnGen, Gen};
use crate::ir::views::KsMap;
use crate::ir::{Attr, Module, OpData, OpId, Opcode, Type, Value, ValueDef};
use crate::vocab::helpers::MAP_LOOKUP_ELEM;
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::intrinsics::Intrinsic;
use inkwell::module::{Linkage, Module as LlvmModule};
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::TargetMachine;
use inkwell::values::{FunctionValue, PointerValue};
use inkwell::AddressSpace;
use std::collections::{HashMap, HashSet};

/// The prefix of the stand-in functions' names.
const STAND_IN: &str = "ksc.array_entry.";

impl<'ctx> FnGen<'_, '_, 'ctx> {
    /// Emits `d`, a `bpf_map_lookup_elem` helper call, as a call of its map's stand-in when the
    /// map is an array and the optimiser runs. Returns whether it did.
    pub(super) fn array_lookup(&mut self, back_end: &Bpf, d: &OpData) -> Result<bool, String> {
        if !back_end.optimize || Self::attr_int(d, "id") != i128::from(MAP_LOOKUP_ELEM.id) {
            return Ok(false);
        }
        let (Some(&map), Some(&key)) = (d.operands.first(), d.operands.get(1)) else {
            return Ok(false);
        };
        let shareable = back_end
            .shareable_lookups
            .get_or_init(|| shareable_lookups(self.g.m));
        if !d.results.first().is_some_and(|r| shareable.contains(r)) {
            return Ok(false);
        }
        let Some(name) = self.array_map(map) else {
            return Ok(false);
        };
        if self.ty(key).pointee() != Some(&Type::u32()) {
            return Ok(false);
        }
        let stand_in = self.g.array_entry(&name, self.ptr(map)?);
        let key = self
            .builder
            .build_load(self.g.ctx.i32_type(), self.ptr(key)?, "")
            .map_err(|e| e.to_string())?;
        let entry = self
            .builder
            .build_call(stand_in, &[key.into()], "")
            .map_err(|e| e.to_string())?
            .try_as_basic_value()
            .basic()
            .ok_or("the array-entry stand-in returns nothing")?;
        self.set(d, entry);
        Ok(true)
    }

    /// The name of the array map `v` is the address of.
    fn array_map(&self, v: Value) -> Option<String> {
        array_map(self.g.m, v).map(str::to_string)
    }
}

/// The name of the array map `v` is the address of.
fn array_map(m: &Module, v: Value) -> Option<&str> {
    let ValueDef::Result(op, _) = m.value(v).def else {
        return None;
    };
    if m.op(op).opcode != Opcode::BpfMapAddr {
        return None;
    }
    let Some(Attr::Sym(name)) = m.attr(op, "map") else {
        return None;
    };
    let decl = m.lookup_symbol(name)?;
    KsMap::of(m, decl)?
        .kind(m)
        .always_present()
        .then_some(&**name)
}

/// A lookup's key as far as sharing goes: a constant, or a value only known at run time.
#[derive(Clone, Copy, PartialEq)]
enum Key {
    Constant(i128),
    Variable,
}

/// The results of the array lookups in kernel code that another lookup of the same map may
/// share: its key is not a different constant. (Lookups in one program meet after inlining.)
pub(super) fn shareable_lookups(m: &Module) -> HashSet<Value> {
    let mut by_map: HashMap<&str, Vec<(Value, Key)>> = HashMap::new();
    for f in crate::passes::kernel_funcs(m) {
        m.walk_nested(f, &mut |op| {
            let d = m.op(op);
            let lookup = d.opcode == Opcode::BpfHelperCall
                && m.attr(op, "id") == Some(&Attr::Int(i128::from(MAP_LOOKUP_ELEM.id)));
            if let (true, [map, key, ..], [result]) = (lookup, &d.operands[..], &d.results[..]) {
                if let Some(name) = array_map(m, *map) {
                    by_map
                        .entry(name)
                        .or_default()
                        .push((*result, key_of(m, op, *key)));
                }
            }
        });
    }
    let mut shareable = HashSet::new();
    for lookups in by_map.values() {
        for (i, &(result, key)) in lookups.iter().enumerate() {
            let meets = lookups.iter().enumerate().any(|(j, &(_, other))| {
                j != i && (key == Key::Variable || other == Key::Variable || key == other)
            });
            if meets {
                shareable.insert(result);
            }
        }
    }
    shareable
}

/// The key in `slot` when `lookup` reads it: the last store before it in its block, or the zero a
/// `core.local` starts with when nothing stores to the slot.
fn key_of(m: &Module, lookup: OpId, slot: Value) -> Key {
    let constant = |v: Value| m.const_int(v).map_or(Key::Variable, Key::Constant);
    let Some((block, at)) = m.position(lookup) else {
        return Key::Variable;
    };
    let stored = |op: OpId| {
        let d = m.op(op);
        (d.opcode == Opcode::CoreStore && d.operands.get(1) == Some(&slot)).then(|| d.operands[0])
    };
    if let Some(v) = m.block(block).ops[..at]
        .iter()
        .rev()
        .find_map(|&o| stored(o))
    {
        return constant(v);
    }
    let ValueDef::Result(local, _) = m.value(slot).def else {
        return Key::Variable;
    };
    let zeroed = m.op(local).opcode == Opcode::CoreLocal && m.attr(local, "uninit").is_none();
    let mut written = false;
    if zeroed {
        m.walk_nested(m.top_level_of(local), &mut |o| {
            written |= stored(o).is_some()
        });
    }
    if zeroed && !written {
        Key::Constant(0)
    } else {
        Key::Variable
    }
}

impl<'ctx> Gen<'_, 'ctx> {
    /// `ptr ksc.array_entry.MAP(i32 key)`: looks `key` up in `map`; pure and not inlined until
    /// [`inline_array_entries`].
    fn array_entry(&mut self, name: &str, map: PointerValue<'ctx>) -> FunctionValue<'ctx> {
        let symbol = format!("{STAND_IN}{name}");
        if let Some(&f) = self.funcs.get(&symbol) {
            return f;
        }
        let ptr = self.ctx.ptr_type(AddressSpace::default());
        let i32_type = self.ctx.i32_type();
        let f = self.module.add_function(
            &symbol,
            ptr.fn_type(&[i32_type.into()], false),
            Some(Linkage::Internal),
        );
        for (kind, value) in [("memory", 0), ("nounwind", 0), ("willreturn", 0)] {
            f.add_attribute(AttributeLoc::Function, self.enum_attribute(kind, value));
        }
        f.add_attribute(AttributeLoc::Function, self.enum_attribute("noinline", 0));
        // An array's values are 8-aligned (MapKind::value_align): LLVM may copy them in words.
        f.add_attribute(AttributeLoc::Return, self.enum_attribute("align", 8));
        let b = self.ctx.create_builder();
        b.position_at_end(self.ctx.append_basic_block(f, "entry"));
        let built = (|| -> Result<_, String> {
            let slot = b.build_alloca(i32_type, "key").map_err(|e| e.to_string())?;
            // As ksc's own key slots: 8-aligned, where the verifier tracks a 32-bit spill.
            slot.as_instruction()
                .expect("an alloca is an instruction")
                .set_alignment(8)
                .map_err(|e| e.to_string())?;
            // Lifetimes let the inlined keys share one stack slot.
            let lifetime = |which: &str| {
                Intrinsic::find(which)
                    .and_then(|i| i.get_declaration(self.module, &[ptr.into()]))
                    .expect("LLVM declares the lifetime intrinsics")
            };
            let (start, end) = (
                lifetime("llvm.lifetime.start"),
                lifetime("llvm.lifetime.end"),
            );
            let size = self.ctx.i64_type().const_int(4, false);
            b.build_call(start, &[size.into(), slot.into()], "")
                .map_err(|e| e.to_string())?;
            let key = f.get_first_param().expect("the stand-in takes the key");
            b.build_store(slot, key).map_err(|e| e.to_string())?;
            let helper = self
                .ctx
                .i64_type()
                .const_int(u64::from(MAP_LOOKUP_ELEM.id), false)
                .const_to_pointer(ptr);
            let call = b
                .build_indirect_call(
                    ptr.fn_type(&[ptr.into(), ptr.into()], false),
                    helper,
                    &[map.into(), slot.into()],
                    "",
                )
                .map_err(|e| e.to_string())?;
            for kind in ["readonly", "nocapture"] {
                call.add_attribute(AttributeLoc::Param(1), self.enum_attribute(kind, 0));
            }
            call.add_attribute(
                AttributeLoc::Function,
                self.enum_attribute("memory", MEMORY_READ),
            );
            call.add_attribute(AttributeLoc::Return, self.enum_attribute("align", 8));
            let entry = call
                .try_as_basic_value()
                .basic()
                .expect("the helper returns");
            b.build_call(end, &[size.into(), slot.into()], "")
                .map_err(|e| e.to_string())?;
            b.build_return(Some(&entry)).map_err(|e| e.to_string())
        })();
        if let Err(e) = built {
            self.error(
                None,
                format!("cannot build the lookup of array {name}: {e}"),
            );
        }
        self.funcs.insert(symbol, f);
        f
    }

    fn enum_attribute(&self, kind: &str, value: u64) -> Attribute {
        self.ctx
            .create_enum_attribute(Attribute::get_named_enum_kind_id(kind), value)
    }
}

/// Inlines the stand-ins back into the helper calls they are, once LLVM has shared them.
pub(super) fn inline_array_entries(module: &LlvmModule, tm: &TargetMachine) -> Result<(), String> {
    let noinline = Attribute::get_named_enum_kind_id("noinline");
    let always = Attribute::get_named_enum_kind_id("alwaysinline");
    let mut any = false;
    for f in module.get_functions() {
        if f.get_name().to_bytes().starts_with(STAND_IN.as_bytes()) {
            f.remove_enum_attribute(AttributeLoc::Function, noinline);
            f.add_attribute(
                AttributeLoc::Function,
                module.get_context().create_enum_attribute(always, 0),
            );
            any = true;
        }
    }
    if any {
        module
            .run_passes("always-inline", tm, PassBuilderOptions::create())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
