//! Module-level storage: BTF-defined maps in `.maps`, globals in `.data` / `.bss`, and each
//! config in its own `.data.NAME` section.

use crate::codegen::llvm::{c_name, constants::is_zero, Gen};
use crate::ir::{views::*, Attr, OpId, Opcode, Type};
use crate::vocab::{MapKind, Storage};
use inkwell::debug_info::{AsDIScope, DIFlags, DIFlagsConstants, DIType};
use inkwell::module::Linkage;
use inkwell::values::BasicValueEnum;
use inkwell::AddressSpace;

const BPF_F_NO_PREALLOC: i128 = 1;
const LIBBPF_PIN_BY_NAME: u64 = 1;

/// One member of a BTF map definition: an integer (`int (*name)[N]`) or a type (`T *name`).
enum Member {
    Int(&'static str, u64),
    Type(&'static str, Type),
}

impl<'ctx> Gen<'_, 'ctx> {
    pub fn declarations(&mut self) {
        for op in self.m.top_ops().to_vec() {
            match self.m.op(op).opcode {
                Opcode::KsMap => self.map(op),
                Opcode::KsProgArray => {
                    let n = match self.m.attr(op, "programs") {
                        Some(Attr::List(l)) => l.len() as u64,
                        _ => 0,
                    };
                    let name = self.m.symbol(op).unwrap_or("prog_array").to_string();
                    self.map_definition(
                        &name,
                        &[
                            Member::Int("type", 3),
                            Member::Int("max_entries", n.max(1)),
                            Member::Type("key", Type::u32()),
                            Member::Type("value", Type::u32()),
                        ],
                        0,
                    );
                }
                Opcode::KsGlobal => self.global(op),
                Opcode::KsConfig => self.config(op),
                _ => {}
            }
        }
    }

    /// A struct_ops instance (§16.1): a global of the kernel struct in `.struct_ops.link`, its
    /// function-pointer members pointing at the method programs (libbpf reads these relocations)
    /// and its static fields holding their values. Called after the functions are declared.
    pub fn struct_ops_instances(&mut self) {
        for op in self.m.top_ops().to_vec() {
            if self.m.op(op).opcode == Opcode::KsImpl {
                if let Err(e) = self.struct_ops(op) {
                    self.error(Some(op), e);
                }
            }
        }
    }

    fn struct_ops(&mut self, op: OpId) -> Result<(), String> {
        let m = self.m;
        let v = KsImpl(op);
        let kname = String::from_utf8_lossy(v.kernel_struct(m)).into_owned();
        let decl = m
            .lookup_symbol(&kname)
            .filter(|&d| m.op(d).opcode == Opcode::KsStruct)
            .ok_or_else(|| {
                format!("no layout of struct {kname} (kernel BTF unavailable at compile time?)")
            })?;
        let fields = KsStruct(decl).fields(m).to_vec();
        let st = self.struct_type(&kname);
        let mut values: Vec<BasicValueEnum> = st
            .get_field_types()
            .iter()
            .map(|t| t.const_zero())
            .collect();
        let sym = |a: &Attr| matches!(a, Attr::Sym(_) | Attr::Str(_)).then(|| s_of(a));
        let members: Vec<String> = v.members(m).iter().filter_map(sym).collect();
        let methods: Vec<String> = v.methods(m).iter().filter_map(sym).collect();
        for (member, method) in members.iter().zip(&methods) {
            let f = *self
                .funcs
                .get(method)
                .ok_or_else(|| format!("@{method} is not a kernel function"))?;
            let at = self
                .field_position(&kname, member)
                .ok_or_else(|| format!("{kname} has no member {member}"))?;
            values[at as usize] = f.as_global_value().as_pointer_value().into();
        }
        let names: Vec<String> = v.field_names(m).iter().filter_map(sym).collect();
        for (name, value) in names.iter().zip(v.field_values(m).to_vec()) {
            let Some((_, ty)) = fields.iter().find(|(n, _)| n == name) else {
                continue;
            };
            let at = self
                .field_position(&kname, name)
                .ok_or_else(|| format!("{kname} has no member {name}"))?;
            let value = match (ty, &value) {
                (Type::Array(_, n), Attr::Str(s)) => {
                    let mut bytes = s.clone();
                    bytes.resize(*n as usize, 0);
                    self.ctx.const_string(&bytes, false).into()
                }
                _ => self
                    .constant(ty, &value)
                    .ok_or_else(|| format!("field {name} cannot hold that value"))?,
            };
            values[at as usize] = value;
        }
        let init = st.const_named_struct(&values);
        let name = v.name(m).to_string();
        let g = self.module.add_global(st, None, &c_name(&name));
        g.set_initializer(&init);
        g.set_section(Some(".struct_ops.link"));
        g.set_alignment(8);
        let di = self.di_type(&Type::Struct(kname.as_str().into()));
        self.attach_debug(g, &name, di, 0);
        self.globals.insert(name, g);
        Ok(())
    }

    fn map(&mut self, op: OpId) {
        let v = KsMap(op);
        let m = self.m;
        let kind = v.kind(m);
        let ty = u64::from(kind.bpf_map_type());
        let mut flags = v.flags(m);
        if kind == MapKind::LpmTrie {
            flags |= BPF_F_NO_PREALLOC;
        }
        let mut members = vec![
            Member::Int("type", ty),
            Member::Int("max_entries", v.max_entries(m) as u64),
        ];
        match kind {
            MapKind::Ringbuf => {}
            MapKind::PerfEventArray => {
                members.push(Member::Int("key_size", 4));
                members.push(Member::Int("value_size", 4));
            }
            MapKind::Queue | MapKind::Stack | MapKind::BloomFilter => {
                members.push(Member::Type("value", v.value(m).clone()))
            }
            _ => {
                if let Some(k) = v.key(m) {
                    members.push(Member::Type("key", k.clone()));
                }
                members.push(Member::Type("value", v.value(m).clone()));
            }
        }
        if kind == MapKind::BloomFilter {
            members.push(Member::Int("map_extra", 5));
        }
        if flags != 0 {
            members.push(Member::Int("map_flags", flags as u64));
        }
        if let Some(n) = v.numa_node(m) {
            members.push(Member::Int("numa_node", n as u64));
        }
        if v.pinned(m) {
            members.push(Member::Int("pinning", LIBBPF_PIN_BY_NAME));
        }
        let name = v.name(m).to_string();
        self.map_definition(&name, &members, op.0);
    }

    /// A zeroed `.maps` global whose debug type is the anonymous struct libbpf reads the map from.
    fn map_definition(&mut self, name: &str, members: &[Member], line: u32) {
        let int = self
            .di
            .create_basic_type("int", 32, 0x05, DIFlags::PUBLIC)
            .expect("int")
            .as_type();
        // libbpf reads only the array's length. `int[N]` as libbpf's macros write it, unless its
        // size would pass 4 GiB (max_entries above 2^30): the kernel then refuses the whole BTF
        // and libbpf goes on without it (no func_info: programs passing callbacks fail), so such
        // a value is the length of a byte array.
        let byte = self
            .di
            .create_basic_type("char", 8, 0x06, DIFlags::PUBLIC)
            .expect("char")
            .as_type();
        let mut di_members: Vec<DIType> = Vec::new();
        for (i, mem) in members.iter().enumerate() {
            let (mname, pointee) = match mem {
                Member::Int(n, v) => {
                    let (elem, bits) = if *v > u64::from(u32::MAX) / 4 {
                        (byte, 8)
                    } else {
                        (int, 32)
                    };
                    (
                        *n,
                        self.di
                            .create_array_type(
                                elem,
                                *v * bits,
                                0,
                                &crate::codegen::llvm::types::one_dimension(*v as i64),
                            )
                            .as_type(),
                    )
                }
                Member::Type(n, t) => (*n, self.di_type(t)),
            };
            let ptr = self.pointer(Some(pointee));
            di_members.push(
                self.di
                    .create_member_type(
                        self.cu.as_debug_info_scope(),
                        mname,
                        self.file,
                        line,
                        64,
                        0,
                        i as u64 * 64,
                        DIFlags::PUBLIC,
                        ptr,
                    )
                    .as_type(),
            );
        }
        let di_struct = self
            .di
            .create_struct_type(
                self.cu.as_debug_info_scope(),
                "",
                self.file,
                line,
                members.len() as u64 * 64,
                0,
                DIFlags::PUBLIC,
                None,
                &di_members,
                0,
                None,
                "",
            )
            .as_type();
        let ptr = self.ctx.ptr_type(AddressSpace::default());
        let llty = self
            .ctx
            .struct_type(&vec![ptr.into(); members.len()], false);
        let g = self.module.add_global(llty, None, &c_name(name));
        g.set_initializer(&llty.const_zero());
        g.set_section(Some(".maps"));
        g.set_alignment(8);
        self.attach_debug(g, name, di_struct, line);
        self.globals.insert(name.to_string(), g);
    }

    fn global(&mut self, op: OpId) {
        let v = KsGlobal(op);
        let m = self.m;
        if matches!(v.storage(m), Storage::Pinned | Storage::Process) {
            return; // pinned globals live in the __pinned_globals map (lower-bpf)
        }
        let ty = v.ty(m).clone();
        let name = v.name(m).to_string();
        let llty = self.memory_type(&ty);
        let init = v.init(m).cloned();
        let value = init.as_ref().and_then(|a| self.constant(&ty, a));
        // All-zero initialisers go to .bss like uninitialised globals, as a C compiler does.
        let zero = value.is_none() || init.as_ref().is_none_or(is_zero);
        let g = self.module.add_global(llty, None, &c_name(&name));
        match value {
            Some(val) => g.set_initializer(&val),
            None => g.set_initializer(&llty.const_zero()),
        }
        g.set_linkage(Linkage::External);
        g.set_section(Some(if zero { ".bss" } else { ".data" }));
        g.set_alignment(self.align_of(&ty));
        let di = self.di_type(&ty);
        self.attach_debug(g, &name, di, 0);
        self.globals.insert(name, g);
    }

    /// Config `c` (§12.3): global `c`, holding struct `c_config` with the declared defaults, alone
    /// in section `.data.c`, which libbpf makes a one-entry array map of that name. Kernel code
    /// reads it directly (one load, as C reads a global), not through a map lookup; userspace
    /// reaches the same memory through libbpf's mapping of the section (runtime/ABI.md §5).
    fn config(&mut self, op: OpId) {
        let m = self.m;
        let c = KsConfig(op);
        let name = c.name(m).to_string();
        let ty = Type::Struct(format!("{name}_config").as_str().into());
        let llty = self.memory_type(&ty);
        let defaults = Attr::List(c.defaults(m).to_vec());
        let Some(init) = self.constant(&ty, &defaults) else {
            self.error(
                Some(op),
                format!("config {name}: no constant for its defaults"),
            );
            return;
        };
        let g = self.module.add_global(llty, None, &c_name(&name));
        g.set_initializer(&init);
        g.set_linkage(Linkage::External);
        g.set_section(Some(&config_section(&name)));
        // Alone in its section, whose map value the kernel places 8-aligned: saying so lets LLVM
        // copy a `u8[8]` field in one load rather than eight.
        g.set_alignment(self.align_of(&ty).max(8));
        let di = self.di_type(&ty);
        let line = m.op(op).loc.line;
        self.attach_debug(g, &name, di, line);
        self.globals.insert(name, g);
    }
}

/// The data section, and so the libbpf map, holding config `name`.
fn config_section(name: &str) -> String {
    format!(".data.{name}")
}

fn s_of(a: &Attr) -> String {
    match a {
        Attr::Sym(s) => s.clone(),
        Attr::Str(s) => String::from_utf8_lossy(s).into_owned(),
        _ => String::new(),
    }
}
