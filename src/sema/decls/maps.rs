//! Map declarations and their flags (§11.1).

use super::*;

/// The most memory a queue or stack map's entries may take (4 GiB).
const MAX_MAP_BYTES: u128 = 1 << 32;
impl<'a> Checker<'a, '_> {
    /// Folds the size of map `name` (§11.1): a constant expression of integer type, ≥ 0 (the
    /// kind-specific lower bounds are checked by the caller). `None` after an error.
    pub(in crate::sema::decls) fn map_size(&mut self, name: &str, e: &Expr) -> Option<u64> {
        if self.compat && !matches!(e.kind, ExprKind::Int(_)) {
            self.error(Code::E0011, e.span, "a map size other than an integer literal is a ksc extension (rejected by --compat)");
        }
        let mut cx = crate::sema::body::FnCtx::new(FnKind::User, Ty::Void);
        let t = self.expr(&mut cx, e, None);
        if t.is_error() {
            return None;
        }
        if !t.is_integral() {
            self.error(
                Code::E0301,
                e.span,
                format!(
                    "the size of map `{name}` must be an integer, found `{}`",
                    self.show(&t)
                ),
            );
            return None;
        }
        let Some(v) = self.const_of(e).and_then(ConstValue::as_int) else {
            self.error(Code::E0312, e.span, format!("the size of map `{name}` must be a constant expression (an integer literal, a `const`, or arithmetic on them)"));
            return None;
        };
        match u64::try_from(v) {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(
                    Code::E0605,
                    e.span,
                    format!("the size of map `{name}` is {v}; it must be at least 1"),
                );
                None
            }
        }
    }

    pub(in crate::sema::decls) fn check_map(&mut self, item: &Item, m: &MapDecl) {
        let Some(idx) = self.maps.iter().position(|x| x.span == m.name.span) else {
            return;
        };
        let t = &m.ty;
        let at = item.span.start();
        // The name is the last component of the pin path (§11.6), which bpffs, like every Linux
        // file system, limits to NAME_MAX bytes.
        if m.pinned && m.name.name.len() > PIN_NAME_MAX {
            self.error(
                Code::E0605,
                m.name.span,
                format!(
                    "a pinned map's name is its file name under /sys/fs/bpf/<base>/maps/, at most {PIN_NAME_MAX} bytes; `{}…` has {}",
                    &m.name.name[..16],
                    m.name.name.len()
                ),
            );
        }
        let Some(kind) = MapKind::declared(&t.kind.name) else {
            self.error(
                Code::E0012,
                t.kind.span,
                format!("`{}` is not a map kind", t.kind.name),
            );
            return;
        };
        if self.compat && kind.is_extension() {
            self.error(
                Code::E0011,
                t.kind.span,
                format!(
                    "`{}` maps are a ksc extension (rejected by --compat)",
                    t.kind.name
                ),
            );
        }
        let kname = t.kind.name.as_str();
        let want = if kind.has_key() { 2 } else { 1 };
        if t.args.len() != want {
            let form = if kind.has_key() {
                "KIND<K, V>"
            } else {
                "KIND<V>(N)"
            };
            self.error(
                Code::E0605,
                at,
                format!(
                    "`{kname}` takes {want} type argument(s) ({})",
                    form.replace("KIND", kname)
                ),
            );
            return;
        }
        let size = t.size.as_ref().and_then(|e| self.map_size(&m.name.name, e));
        if let Some(n) = size {
            self.maps[idx].max_entries = n;
        }
        let size_at = t.size.as_ref().map_or(at, |e| e.span);
        match (kind, size) {
            (MapKind::Ringbuf, None) if t.size.is_some() => {}
            (MapKind::Ringbuf, None) => {
                self.error(
                    Code::E0606,
                    at,
                    "a ring buffer needs its size in bytes: `ringbuf<T>(N)`",
                );
            }
            (MapKind::Ringbuf, Some(n))
                if (!n.is_power_of_two() || !(4096..=1 << 27).contains(&n)) =>
            {
                self.error(
                    Code::E0606,
                    size_at,
                    format!("the size {n} is not a power of two in 4096..=134217728"),
                );
            }
            (_, Some(0)) if kind != MapKind::PerfEventArray => {
                self.error(Code::E0605, size_at, "`max_entries` must be at least 1");
            }
            (_, Some(n)) if n > u32::MAX as u64 => {
                self.error(
                    Code::E0605,
                    size_at,
                    format!("`max_entries` {n} does not fit in 32 bits"),
                );
            }
            _ => {}
        }
        let key = self.maps[idx].key.clone();
        let value = self.maps[idx].value.clone();
        let (key_te, value_te) = if kind.has_key() {
            (Some(&t.args[0]), &t.args[1])
        } else {
            (None, &t.args[0])
        };
        if let Some(kt) = key_te {
            if let Err(msg) = self.check_map_key(kind, &key, kt) {
                self.error(Code::E0605, at, format!("`{kname}` key: {msg}"));
            }
        }
        if let Err((code, msg)) = self.check_map_value(kind, &value, value_te) {
            self.error(code, at, format!("`{kname}` value: {msg}"));
        }
        // A queue or stack map's entries are allocated in one piece at creation, with no size
        // check first: gigabytes fail only after the kernel has tried for a long time (other
        // kinds refuse an oversized map at once, E2BIG, which the runtime reports as E0903).
        let bytes = size
            .filter(|_| matches!(kind, MapKind::Queue | MapKind::Stack))
            .map(|n| u128::from(n) * u128::from(self.size_of(&value).unwrap_or(0)));
        if let Some(bytes) = bytes.filter(|&b| b > MAX_MAP_BYTES) {
            self.error(
                Code::E0605,
                size_at,
                format!("this map's entries need {bytes} bytes of kernel memory; ksc refuses queue and stack maps over {MAX_MAP_BYTES} bytes (4 GiB), which the kernel cannot allocate"),
            );
        }
        self.maps[idx].flags = self.map_flags(kind, m, at);
    }

    pub(in crate::sema::decls) fn check_map_key(
        &self,
        kind: MapKind,
        key: &Ty,
        te: &TypeExpr,
    ) -> Result<(), String> {
        if matches!(te.kind, TypeExprKind::Map(_)) {
            return Err("a map cannot be a key".to_string());
        }
        match kind {
            MapKind::Array
            | MapKind::PercpuArray
            | MapKind::Devmap
            | MapKind::Cpumap
            | MapKind::Xskmap => {
                let ok = match key {
                    Ty::Int(IntTy::U32) | Ty::Error => true,
                    Ty::Enum(e) => self.enums[e.0 as usize].repr == IntTy::U32,
                    _ => false,
                };
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "must be `u32` (an index), not `{}`",
                        self.show(key)
                    ))
                }
            }
            MapKind::LpmTrie => self.lpm_key(key),
            _ => self.storable(key),
        }
    }

    /// An LPM trie key is `struct { prefixlen: u32, <address data> }`.
    pub(in crate::sema::decls) fn lpm_key(&self, key: &Ty) -> Result<(), String> {
        let shape =
            "must be a struct whose first field is `prefixlen: u32`, followed by the address";
        let s = match key {
            Ty::Error => return Ok(()),
            Ty::Struct(s) => &self.structs[s.0 as usize],
            _ => return Err(format!("{shape}, not `{}`", self.show(key))),
        };
        // Kernel structs list only the fields read so far; their BTF member order is definitive.
        let (first, count) = match (s.origin, s.btf_id, self.btf.get()) {
            (StructOrigin::Kernel, Some(id), Some(b)) if s.span.is_none() => {
                match b.struct_by_id(id) {
                    Some(ks) => {
                        let first = ks.members.first().map(|m| {
                            (
                                m.name.clone(),
                                matches!(
                                    m.ty,
                                    KType::Int {
                                        size: 4,
                                        signed: false,
                                        ..
                                    }
                                ),
                            )
                        });
                        (first, ks.members.len())
                    }
                    None => return Ok(()),
                }
            }
            _ => (
                s.fields.first().map(|f| (f.name.clone(), f.ty == U32)),
                s.fields.len(),
            ),
        };
        match first {
            Some((n, true)) if n == "prefixlen" && count >= 2 => {}
            _ => return Err(format!("{shape}; `{}` is not", s.name)),
        }
        // The kernel matches the key's bytes from offset 4: padding before or between the
        // address fields would be matched as address bits.
        if s.origin == StructOrigin::File {
            let layout = crate::sema::layout::Layout {
                structs: &self.structs,
                enums: &self.enums,
            };
            let (offsets, _, _) = layout.c_layout(s);
            let mut end = 4;
            for (f, &off) in s.fields.iter().zip(&offsets).skip(1) {
                if off != end {
                    return Err(format!(
                        "{shape} with no padding: `{}` starts at byte {off}, so the trie would match {} padding byte(s) before it as address bits (use byte or u32 arrays)",
                        f.name,
                        off - end
                    ));
                }
                end = off + layout.size_of(&f.ty).unwrap_or(0);
            }
        }
        Ok(())
    }

    pub(in crate::sema::decls) fn check_map_value(
        &self,
        kind: MapKind,
        value: &Ty,
        te: &TypeExpr,
    ) -> Result<(), (Code, String)> {
        if matches!(te.kind, TypeExprKind::Map(_)) {
            return Err((Code::E0605, "a map cannot be stored in a map".to_string()));
        }
        match kind {
            MapKind::Ringbuf => match value {
                Ty::Struct(_) | Ty::Error => Ok(()),
                _ => Err((
                    Code::E0606,
                    format!(
                        "ring buffer records are structs, not `{}`",
                        self.show(value)
                    ),
                )),
            },
            MapKind::PerfEventArray => match value {
                Ty::Struct(_) | Ty::Error => Ok(()),
                _ => Err((
                    Code::E0605,
                    format!("perf event records are structs, not `{}`", self.show(value)),
                )),
            },
            // Redirect maps hold an ifindex / queue size / socket fd, or the kernel's value struct.
            MapKind::Devmap | MapKind::Cpumap | MapKind::Xskmap => match value {
                Ty::Int(IntTy::U32) | Ty::Struct(_) | Ty::Error => Ok(()),
                _ => Err((
                    Code::E0605,
                    format!("must be `u32`, not `{}`", self.show(value)),
                )),
            },
            _ => {
                self.storable(value).map_err(|m| (Code::E0605, m))?;
                if self.holds_pointer(value, 0) {
                    // The kernel keeps pointers in map values only as kptr fields, exchanged with
                    // bpf_kptr_xchg and released on every path; a plain pointer comes back as a
                    // number the verifier will not dereference.
                    return Err((Code::E0605, format!("map values cannot hold pointers (`{}`): store the struct itself, or an id that names it", self.show(value))));
                }
                Ok(())
            }
        }
    }

    /// True when a value of type `t` contains a pointer (through struct fields and arrays).
    pub(in crate::sema::decls) fn holds_pointer(&self, t: &Ty, depth: u32) -> bool {
        match t {
            Ty::Ptr(_) => true,
            Ty::Array(e, _) => self.holds_pointer(e, depth),
            Ty::Struct(s) if depth < 16 => self.structs[s.0 as usize]
                .fields
                .iter()
                .any(|f| self.holds_pointer(&f.ty, depth + 1)),
            _ => false,
        }
    }

    /// Map keys and values are fixed-size data.
    pub(in crate::sema::decls) fn storable(&self, t: &Ty) -> Result<(), String> {
        match t {
            Ty::Error => Ok(()),
            Ty::Void
            | Ty::Fn(_)
            | Ty::Null
            | Ty::FillArray(_)
            | Ty::ProgramHandle
            | Ty::PerfAttachment => Err(format!("`{}` is not fixed-size data", self.show(t))),
            _ if self.size_of(t).unwrap_or(0) == 0 => {
                Err(format!("`{}` has no size", self.show(t)))
            }
            _ => Ok(()),
        }
    }

    /// `@flags(...)`: E0013 for unknown names, E0605 where the kernel rejects the flag for the
    /// kind. Returns the BPF_F_* bits (lpm_trie always gets BPF_F_NO_PREALLOC).
    pub(in crate::sema::decls) fn map_flags(
        &mut self,
        kind: MapKind,
        m: &MapDecl,
        at: Span,
    ) -> u32 {
        use MapKind::*;
        let mut bits = if kind == LpmTrie { 0x1 } else { 0 };
        for f in &m.flags {
            let n = f.name.name.as_str();
            let Some(bit) = flag_bit(n) else {
                self.error(Code::E0013, f.name.span, format!("`{n}` is not a map flag"));
                continue;
            };
            if self.compat && matches!(n, "rdonly_prog" | "wronly_prog" | "mmapable") {
                self.error(
                    Code::E0011,
                    f.name.span,
                    format!("the `{n}` flag is a ksc extension (rejected by --compat)"),
                );
            }
            let fspan = f.arg.map(|(_, s)| f.name.span.to(s)).unwrap_or(f.name.span);
            if (n == "numa_node") != f.arg.is_some() {
                let msg = if n == "numa_node" {
                    "`numa_node` needs the node: `numa_node(N)`".to_string()
                } else {
                    format!("`{n}` takes no argument")
                };
                self.error(Code::E0605, fspan, msg);
                continue;
            }
            let access = matches!(
                kind,
                Hash | LruHash
                    | PercpuHash
                    | Array
                    | PercpuArray
                    | LpmTrie
                    | Queue
                    | Stack
                    | BloomFilter
            );
            let allowed = match n {
                "numa_node" => true,
                "no_prealloc" => matches!(kind, Hash | PercpuHash | LpmTrie),
                "no_common_lru" => kind == LruHash,
                "mmapable" => kind == Array,
                "rdonly" | "wronly" => access || matches!(kind, Devmap | Xskmap | PerfEventArray),
                "rdonly_prog" | "wronly_prog" => access,
                // BPF_F_CLONE is meant for storage maps; accepted where access flags are.
                "clone" => access,
                _ => false,
            };
            if !allowed {
                let kname = m.ty.kind.name.as_str();
                self.error(
                    Code::E0605,
                    fspan,
                    format!("the kernel rejects `{n}` for `{kname}` maps"),
                );
                continue;
            }
            bits |= bit;
        }
        // The kernel refuses contradictory access modes.
        for (a, b, pair) in [
            (0x8, 0x10, "rdonly | wronly"),
            (0x80, 0x100, "rdonly_prog | wronly_prog"),
        ] {
            if bits & a != 0 && bits & b != 0 {
                self.error(Code::E0605, at, format!("`{pair}` is contradictory"));
            }
        }
        bits
    }
}
