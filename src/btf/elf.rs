//! Just enough ELF to find a section by name (the `.BTF` of a `vmlinux` image or a module) or to
//! list them all (the BPF back end's own objects), for 32- and 64-bit objects of either byte
//! order. Every offset is bounds-checked.

use std::ops::Range;

/// The byte range of the section called `name`.
pub(crate) fn section(elf: &[u8], name: &str) -> Result<Range<usize>, String> {
    sections(elf)?
        .into_iter()
        .find(|s| s.name == name)
        .map(|s| s.range)
        .ok_or_else(|| format!("ELF file has no {name} section"))
}

/// `SHT_NOBITS`: a section with a size but no bytes in the file (`.bss`).
const SHT_NOBITS: u32 = 8;

/// One section header, named, with its bytes' range in the file.
pub(crate) struct SectionHeader {
    pub name: String,
    /// `sh_type`: `SHT_SYMTAB` (2), `SHT_REL` (9), …
    pub kind: u32,
    pub range: Range<usize>,
    /// `sh_link`: a symbol table's string table, a relocation section's symbol table.
    pub link: u32,
    /// `sh_info`: the section a relocation section applies to.
    pub info: u32,
}

/// Every section header, in section-index order.
pub(crate) fn sections(elf: &[u8]) -> Result<Vec<SectionHeader>, String> {
    let r = Reader::new(elf).ok_or("malformed ELF header")?;
    let (shoff, shentsize, shnum, shstrndx) = if r.wide {
        (r.u64(0x28)?, r.u16(0x3a)?, r.u16(0x3c)?, r.u16(0x3e)?)
    } else {
        (
            r.u32(0x20)? as u64,
            r.u16(0x2e)?,
            r.u16(0x30)?,
            r.u16(0x32)?,
        )
    };
    let header = |i: u16| -> Result<Section, String> {
        let at = (shoff as usize)
            .checked_add(i as usize * shentsize as usize)
            .ok_or("ELF section table out of range")?;
        r.section(at)
    };
    let names = header(shstrndx)?.range(elf)?;
    (0..shnum)
        .map(|i| {
            let s = header(i)?;
            let at = names
                .start
                .checked_add(s.name as usize)
                .filter(|&a| a < names.end)
                .ok_or("ELF section name out of range")?;
            let name = elf[at..names.end].split(|&b| b == 0).next().unwrap_or(&[]);
            let range = if s.kind == SHT_NOBITS {
                0..0
            } else {
                s.range(elf)?
            };
            Ok(SectionHeader {
                name: String::from_utf8_lossy(name).into_owned(),
                kind: s.kind,
                range,
                link: s.link,
                info: s.info,
            })
        })
        .collect()
}

struct Section {
    name: u32,
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
}

impl Section {
    fn range(&self, elf: &[u8]) -> Result<Range<usize>, String> {
        let start = usize::try_from(self.offset).map_err(|_| "ELF section out of range")?;
        let end = usize::try_from(self.size)
            .ok()
            .and_then(|s| start.checked_add(s))
            .filter(|&e| e <= elf.len());
        end.map(|e| start..e)
            .ok_or_else(|| "ELF section lies outside the file".to_string())
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    wide: bool,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Option<Self> {
        let wide = match bytes.get(4)? {
            1 => false,
            2 => true,
            _ => return None,
        };
        let big_endian = match bytes.get(5)? {
            1 => false,
            2 => true,
            _ => return None,
        };
        Some(Reader {
            bytes,
            wide,
            big_endian,
        })
    }

    fn take<const N: usize>(&self, at: usize) -> Result<[u8; N], String> {
        let b = at
            .checked_add(N)
            .and_then(|end| self.bytes.get(at..end))
            .ok_or("ELF data truncated")?;
        let mut a: [u8; N] = b.try_into().expect("N bytes");
        if self.big_endian {
            a.reverse();
        }
        Ok(a)
    }
    fn u16(&self, at: usize) -> Result<u16, String> {
        self.take(at).map(u16::from_le_bytes)
    }
    fn u32(&self, at: usize) -> Result<u32, String> {
        self.take(at).map(u32::from_le_bytes)
    }
    fn u64(&self, at: usize) -> Result<u64, String> {
        self.take(at).map(u64::from_le_bytes)
    }

    /// A section header: sh_name, then sh_offset and sh_size at their class's positions.
    fn section(&self, at: usize) -> Result<Section, String> {
        if at >= self.bytes.len() {
            return Err("ELF section table out of range".into());
        }
        let name = self.u32(at)?;
        let kind = self.u32(at + 4)?;
        let (offset, size, link, info) = if self.wide {
            (
                self.u64(at + 0x18)?,
                self.u64(at + 0x20)?,
                self.u32(at + 0x28)?,
                self.u32(at + 0x2c)?,
            )
        } else {
            (
                self.u32(at + 0x10)? as u64,
                self.u32(at + 0x14)? as u64,
                self.u32(at + 0x18)?,
                self.u32(at + 0x1c)?,
            )
        };
        Ok(Section {
            name,
            kind,
            offset,
            size,
            link,
            info,
        })
    }
}
