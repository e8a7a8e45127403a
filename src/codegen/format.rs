//! Print formats shared by the kernel-side back ends: `bpf_trace_printk` and `printk` receive
//! every integer argument as a 64-bit value.

/// Rewrites a KernelScript format for arguments passed as 64-bit values: length modifiers are
/// dropped and `ll` put on integer conversions. Returns the format and each conversion's letter.
pub fn widen_format(fmt: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::with_capacity(fmt.len() + 8);
    let mut convs = Vec::new();
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        out.push(c);
        i += 1;
        if c != b'%' {
            continue;
        }
        if fmt.get(i) == Some(&b'%') {
            out.push(b'%');
            i += 1;
            continue;
        }
        while i < fmt.len() && matches!(fmt[i], b'-' | b'0'..=b'9' | b'.' | b' ' | b'+' | b'#') {
            out.push(fmt[i]);
            i += 1;
        }
        while i < fmt.len() && matches!(fmt[i], b'l' | b'h') {
            i += 1;
        }
        if let Some(&conv) = fmt.get(i) {
            if matches!(conv, b'd' | b'i' | b'u' | b'x' | b'X') {
                out.extend_from_slice(b"ll");
            }
            out.push(conv);
            convs.push(conv);
            i += 1;
        }
    }
    (out, convs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_are_widened_for_64_bit_arguments() {
        let (f, c) = super::widen_format(b"a %d b %lu %x %s %% %c %5hhd");
        assert_eq!(
            String::from_utf8(f).unwrap(),
            "a %lld b %llu %llx %s %% %c %5lld"
        );
        assert_eq!(c, b"duxscd".to_vec());
    }
}
