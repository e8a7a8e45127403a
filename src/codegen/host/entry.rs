//! What the runtime starts from (runtime/ABI.md §2, §3.2): process-memory globals and their reset,
//! the `ksrt_unit` descriptor with the embedded BPF object, the command-line table of
//! `main(args: S)`, and the C `main` — the program's or the test runner's.

use super::Unit;
use crate::codegen::llvm::{c_name, Gen};
use crate::ir::layout::{field_offsets, size_of, struct_decl};
use crate::ir::views::{KsCli, KsFunc, KsGlobal, KsStruct};
use crate::ir::{Attr, Type};
use crate::vocab::{Storage, Target};
use inkwell::module::Linkage;
use inkwell::values::{BasicValue, BasicValueEnum, FunctionValue, PointerValue};
use inkwell::AddressSpace;

/// `KSRT_ARG_*` of runtime/ksrt.h, by the option kinds of `ks.cli`.
fn arg_kind(kind: &[u8]) -> u64 {
    match kind {
        b"uint" => 0,
        b"int" => 1,
        b"bool" => 2,
        b"char" => 3,
        b"str" => 4,
        _ => 5,
    }
}

impl<'ctx> Gen<'_, 'ctx> {
    /// Globals of a unit without kernel side live in process memory (§12.1).
    pub fn process_globals(&mut self) {
        for op in self.m.top_ops().to_vec() {
            let Some(v) = KsGlobal::of(self.m, op) else {
                continue;
            };
            if v.storage(self.m) != Storage::Process {
                continue;
            }
            let (name, ty) = (v.name(self.m).to_string(), v.ty(self.m).clone());
            let llty = self.memory_type(&ty);
            let g = self.module.add_global(llty, None, &format!("ks.{name}"));
            let init = v
                .init(self.m)
                .cloned()
                .and_then(|a| self.constant(&ty, &a))
                .unwrap_or_else(|| llty.const_zero());
            g.set_initializer(&init);
            g.set_linkage(Linkage::Internal);
            g.set_alignment(self.align_of(&ty));
            let di = self.di_type(&ty);
            let line = self.m.op(op).loc.line;
            self.attach_debug(g, &name, di, line);
            self.globals.insert(name, g);
        }
    }

    /// The runtime descriptor and the C `main`.
    pub fn entry(&mut self, unit: &Unit) {
        let descriptor = self.unit_descriptor(unit);
        let result = if unit.test {
            self.test_main(descriptor)
        } else {
            self.program_main(descriptor)
        };
        if let Err(e) = result {
            self.error(None, e);
        }
    }

    fn ptr_null(&self) -> BasicValueEnum<'ctx> {
        self.ctx
            .ptr_type(AddressSpace::default())
            .const_null()
            .into()
    }

    fn u32c(&self, v: u64) -> BasicValueEnum<'ctx> {
        self.ctx.i32_type().const_int(v, false).into()
    }

    /// A private constant holding `value`.
    fn constant_global(&self, value: BasicValueEnum<'ctx>, name: &str) -> PointerValue<'ctx> {
        let g = self.module.add_global(value.get_type(), None, name);
        g.set_initializer(&value);
        g.set_constant(true);
        g.set_linkage(Linkage::Private);
        g.as_pointer_value()
    }

    fn bytes_global(&self, bytes: &[u8], name: &str) -> PointerValue<'ctx> {
        let g = self.module.add_global(
            self.ctx.i8_type().array_type(bytes.len() as u32),
            None,
            name,
        );
        g.set_initializer(&self.ctx.const_string(bytes, false));
        g.set_constant(true);
        g.set_linkage(Linkage::Private);
        g.set_alignment(8);
        g.as_pointer_value()
    }

    /// A constant array of C records (each a list of fields) and its length, or NULL and 0.
    fn records(
        &self,
        rows: Vec<Vec<BasicValueEnum<'ctx>>>,
        name: &str,
    ) -> (BasicValueEnum<'ctx>, BasicValueEnum<'ctx>) {
        let n = self.u32c(rows.len() as u64);
        if rows.is_empty() {
            return (self.ptr_null(), n);
        }
        let values: Vec<_> = rows
            .iter()
            .map(|r| self.ctx.const_struct(r, false))
            .collect();
        let array = values[0].get_type().const_array(&values);
        (self.constant_global(array.into(), name).into(), n)
    }

    /// `struct ksrt_unit` (runtime/ABI.md §2).
    fn unit_descriptor(&mut self, unit: &Unit) -> PointerValue<'ctx> {
        let base = self.c_string(unit.base.as_bytes()).into();
        let (object, object_size, pinned, pinned_init, slots, kfuncs) = match unit.kernel {
            Some(k) => {
                let object = self.bytes_global(&k.object, "ksrt.object");
                let pinned = k
                    .pinned_maps
                    .iter()
                    .map(|n| self.c_string(n.as_bytes()))
                    .collect();
                let init = if k.pinned_globals_init.is_empty() {
                    self.ptr_null()
                } else {
                    self.bytes_global(&k.pinned_globals_init, "ksrt.pinned_globals")
                        .into()
                };
                let slots = k
                    .prog_slots
                    .iter()
                    .map(|(map, i, prog)| {
                        vec![
                            self.c_string(map.as_bytes()).into(),
                            self.u32c(*i as u64),
                            self.c_string(c_name(prog).as_bytes()).into(),
                        ]
                    })
                    .collect();
                let kfuncs = k
                    .kfuncs
                    .iter()
                    .map(|site| {
                        let program = if site.program.is_empty() {
                            self.ptr_null()
                        } else {
                            self.c_string(c_name(&site.program).as_bytes()).into()
                        };
                        vec![
                            self.c_string(site.kfunc.as_bytes()).into(),
                            self.c_string(site.place.as_bytes()).into(),
                            program,
                        ]
                    })
                    .collect();
                (
                    object.into(),
                    k.object.len() as u64,
                    pinned,
                    (init, k.pinned_globals_init.len() as u64),
                    slots,
                    kfuncs,
                )
            }
            None => (
                self.ptr_null(),
                0,
                Vec::new(),
                (self.ptr_null(), 0),
                Vec::new(),
                Vec::new(),
            ),
        };
        // Pinned maps are an array of `const char *`.
        let pinned: Vec<PointerValue> = pinned;
        let n_pinned = self.u32c(pinned.len() as u64);
        let pinned_list = if pinned.is_empty() {
            self.ptr_null()
        } else {
            self.constant_global(
                self.ctx
                    .ptr_type(AddressSpace::default())
                    .const_array(&pinned)
                    .into(),
                "ksrt.pinned_maps",
            )
            .into()
        };
        let (slots, n_slots) = self.records(slots, "ksrt.prog_slots");
        // A ring buffer's default handler is the userspace function `<rb>_callback` (§11.5).
        let mut handlers = Vec::new();
        for name in unit
            .kernel
            .map(|k| k.event_buffers.as_slice())
            .unwrap_or_default()
        {
            if let Some(f) = self.funcs.get(&format!("{name}_callback")).copied() {
                handlers.push(vec![
                    self.c_string(name.as_bytes()).into(),
                    f.as_global_value().as_pointer_value().into(),
                ]);
            }
        }
        let (handlers, n_handlers) = self.records(handlers, "ksrt.rb_defaults");
        let (kfuncs, n_kfuncs) = self.records(kfuncs, "ksrt.kfuncs");
        let reset = self.reset_globals();
        let fields = [
            base,
            object,
            self.ctx.i64_type().const_int(object_size, false).into(),
            pinned_list,
            n_pinned,
            pinned_init.0,
            self.u32c(pinned_init.1),
            slots,
            n_slots,
            handlers,
            n_handlers,
            self.ctx
                .i8_type()
                .const_int(unit.has_kfuncs as u64, false)
                .into(),
            reset.as_global_value().as_pointer_value().into(),
            kfuncs,
            n_kfuncs,
        ];
        self.constant_global(self.ctx.const_struct(&fields, false).into(), "ksrt.unit")
    }

    /// `reset_globals`: stores every process global's initial value again (a fresh start per test).
    fn reset_globals(&mut self) -> FunctionValue<'ctx> {
        let f = self.module.add_function(
            "ksrt.reset_globals",
            self.ctx.void_type().fn_type(&[], false),
            Some(Linkage::Private),
        );
        let b = self.ctx.create_builder();
        b.position_at_end(self.ctx.append_basic_block(f, "entry"));
        for (_, g) in self.globals.iter() {
            if let Some(init) = g.get_initializer() {
                let _ = b.build_store(g.as_pointer_value(), init);
            }
        }
        let _ = b.build_return(None);
        f
    }

    /// The command-line table of `main(args: S)` (`struct ksrt_arg_field`), from `ks.cli`.
    fn arg_fields(&mut self) -> Option<(String, BasicValueEnum<'ctx>, BasicValueEnum<'ctx>)> {
        let m = self.m;
        let cli = m.top_ops().iter().find_map(|&o| KsCli::of(m, o))?;
        let strukt = cli.r#struct(m).to_string();
        let decl = struct_decl(m, &strukt)?;
        let fields = KsStruct(decl).fields(m).to_vec();
        let offsets = field_offsets(m, decl);
        let (kinds, type_names, enumerators) = (
            cli.kinds(m).to_vec(),
            cli.type_names(m).to_vec(),
            cli.enumerators(m).to_vec(),
        );
        let text = |a: &Attr| match a {
            Attr::Str(s) => s.clone(),
            _ => Vec::new(),
        };
        let mut rows = Vec::new();
        for (i, (name, ty)) in fields.iter().enumerate() {
            let (Some(kind), Some(type_name)) = (kinds.get(i), type_names.get(i)) else {
                break;
            };
            let items: Vec<Vec<BasicValueEnum>> = match enumerators.get(i) {
                Some(Attr::List(items)) => items
                    .iter()
                    .filter_map(|it| match it {
                        Attr::List(pair) => match pair.as_slice() {
                            [Attr::Str(n), Attr::Int(v)] => Some(vec![
                                self.c_string(n).into(),
                                self.ctx
                                    .i64_type()
                                    .const_int(*v as i64 as u64, false)
                                    .into(),
                            ]),
                            _ => None,
                        },
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let (items, n_items) = self.records(items, "ksrt.enum_items");
            let size = size_of(m, ty).unwrap_or(0);
            rows.push(vec![
                self.c_string(name.as_bytes()).into(),
                self.c_string(&text(type_name)).into(),
                self.u32c(offsets[i]),
                self.u32c(size),
                self.ctx
                    .i8_type()
                    .const_int(arg_kind(&text(kind)), false)
                    .into(),
                items,
                n_items,
            ]);
        }
        let (table, n) = self.records(rows, "ksrt.args");
        Some((strukt, table, n))
    }

    fn c_main(&self) -> (FunctionValue<'ctx>, inkwell::builder::Builder<'ctx>) {
        let ptr = self.ctx.ptr_type(AddressSpace::default());
        let fty = self
            .ctx
            .i32_type()
            .fn_type(&[self.ctx.i32_type().into(), ptr.into()], false);
        let main = self
            .module
            .add_function("main", fty, Some(Linkage::External));
        let b = self.ctx.create_builder();
        b.position_at_end(self.ctx.append_basic_block(main, "entry"));
        (main, b)
    }

    /// `main(argc, argv)`: parse the arguments, start the runtime, run the user's `main`, exit
    /// with its result (§15.1).
    fn program_main(&mut self, unit: PointerValue<'ctx>) -> Result<(), String> {
        let e = |x: inkwell::builder::BuilderError| x.to_string();
        let Some(user_main) = self.funcs.get("main").copied() else {
            return Ok(());
        };
        let args = self.arg_fields();
        let (main, b) = self.c_main();
        let argc = main.get_nth_param(0).ok_or("main without argc")?;
        let argv = main.get_nth_param(1).ok_or("main without argv")?;
        let ptr_t = Type::ptr(Type::u8());
        let mut call_args = Vec::new();
        if let Some((strukt, table, n)) = args {
            let st = self.struct_type(&strukt);
            let slot = b.build_alloca(st, "args").map_err(e)?;
            b.build_store(slot, st.const_zero()).map_err(e)?;
            let parse = self.c_function(
                "ksrt_parse_args",
                &[
                    Type::i32(),
                    ptr_t.clone(),
                    ptr_t.clone(),
                    ptr_t.clone(),
                    Type::u32(),
                ],
                &Type::Void,
            );
            b.build_call(
                parse,
                &[
                    argc.into(),
                    argv.into(),
                    slot.into(),
                    table.into(),
                    n.into(),
                ],
                "",
            )
            .map_err(e)?;
            call_args.push(b.build_load(st, slot, "").map_err(e)?.into());
        }
        let start = self.c_function("ksrt_start", std::slice::from_ref(&ptr_t), &Type::Void);
        b.build_call(start, &[unit.into()], "").map_err(e)?;
        let status = b
            .build_call(user_main, &call_args, "")
            .map_err(e)?
            .try_as_basic_value()
            .basic()
            .ok_or("main returns no status")?;
        let exit = self.c_function("ksrt_exit", &[Type::i32()], &Type::Void);
        b.build_call(exit, &[status.into()], "").map_err(e)?;
        b.build_unreachable().map_err(e)?;
        Ok(())
    }

    /// The test runner's `main`: the table of `@test` functions (in source order) handed to
    /// `ksrt_test_main` (§17.2).
    fn test_main(&mut self, unit: PointerValue<'ctx>) -> Result<(), String> {
        let e = |x: inkwell::builder::BuilderError| x.to_string();
        let m = self.m;
        let mut rows = Vec::new();
        for f in m.funcs().collect::<Vec<_>>() {
            if KsFunc(f).test(m) != Some(true) || KsFunc(f).target(m) != Target::Host {
                continue;
            }
            let name = m.symbol(f).unwrap_or("test").to_string();
            let Some(&func) = self.funcs.get(&name) else {
                continue;
            };
            let returns_bool = matches!(KsFunc(f).ty(m), Type::Func(ft) if ft.ret == Type::Bool);
            // `run` returns the test's result widened to 64 bits, as the runtime's table wants.
            let i64t = self.ctx.i64_type();
            let wrapper = self.module.add_function(
                &format!("ks.test.{name}"),
                i64t.fn_type(&[], false),
                Some(Linkage::Private),
            );
            let b = self.ctx.create_builder();
            b.position_at_end(self.ctx.append_basic_block(wrapper, "entry"));
            let r = b
                .build_call(func, &[], "")
                .map_err(e)?
                .try_as_basic_value()
                .basic()
                .ok_or("a test returns nothing")?
                .into_int_value();
            let wide = if returns_bool {
                b.build_int_z_extend(r, i64t, "")
            } else {
                b.build_int_s_extend_or_bit_cast(r, i64t, "")
            }
            .map_err(e)?;
            b.build_return(Some(&wide.as_basic_value_enum()))
                .map_err(e)?;
            rows.push(vec![
                self.c_string(name.as_bytes()).into(),
                wrapper.as_global_value().as_pointer_value().into(),
                self.ctx
                    .i8_type()
                    .const_int(returns_bool as u64, false)
                    .into(),
            ]);
        }
        let (tests, n) = self.records(rows, "ksrt.tests");
        let (main, b) = self.c_main();
        let argc = main.get_nth_param(0).ok_or("main without argc")?;
        let argv = main.get_nth_param(1).ok_or("main without argv")?;
        let ptr_t = Type::ptr(Type::u8());
        let run = self.c_function(
            "ksrt_test_main",
            &[
                ptr_t.clone(),
                ptr_t.clone(),
                Type::u32(),
                Type::i32(),
                ptr_t,
            ],
            &Type::i32(),
        );
        let status = b
            .build_call(
                run,
                &[
                    unit.into(),
                    tests.into(),
                    n.into(),
                    argc.into(),
                    argv.into(),
                ],
                "",
            )
            .map_err(e)?
            .try_as_basic_value()
            .basic()
            .ok_or("ksrt_test_main returns nothing")?;
        b.build_return(Some(&status)).map_err(e)?;
        Ok(())
    }
}
