//! `ksc opt`: textual KS-IR in, passes, verification, textual KS-IR out.

use crate::ir::{self, Module};
use crate::passes::manager::{self, Pipeline, PipelineError};
use std::path::Path;

pub fn run(file: &Path, passes: &[String], list: bool) -> i32 {
    if list {
        for p in crate::passes::registry::list() {
            println!("{:<20} {}", p.name, p.about);
        }
        return 0;
    }
    let text = if file == Path::new("-") {
        let mut s = String::new();
        if std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).is_err() {
            eprintln!("<stdin>:1:1: error: input is not UTF-8 text");
            return 1;
        }
        s
    } else {
        match crate::input::read_regular(file, Some(crate::input::MAX_SOURCE_BYTES)) {
            Ok(b) => match String::from_utf8(b) {
                Ok(s) => s,
                Err(_) => {
                    eprintln!("{}:1:1: error: input is not UTF-8 text", file.display());
                    return 1;
                }
            },
            Err(e) => {
                eprintln!("{}:1:1: error: cannot read the file: {e}", file.display());
                return 1;
            }
        }
    };
    let name = file.display().to_string();
    let parsed = match ir::parse::parse_module(&text) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{name}:{}:{}: error: {}", e.line, e.col, e.message);
            return 1;
        }
    };
    let mut module = parsed.module;
    let at = |m: &Module, op: ir::OpId| {
        let (l, c) = parsed.op_positions.get(&op).copied().unwrap_or((1, 1));
        let _ = m;
        format!("{name}:{l}:{c}")
    };
    let errors = ir::verify::verify_module(&module);
    if !errors.is_empty() {
        for e in &errors {
            eprintln!(
                "{}: error: '{}' op {}",
                at(&module, e.op),
                module.op(e.op).opcode.name(),
                e.message
            );
        }
        return 1;
    }
    // The input may come from any stage: the pipeline is checked against what the module shows.
    let names: Vec<&str> = passes.iter().map(String::as_str).collect();
    let pipeline = match Pipeline::new(&names, manager::observed_facts(&module), &[]) {
        Ok(p) => p,
        Err(why) => {
            eprintln!("{name}: error: {why}");
            return 1;
        }
    };
    let opts = manager::RunOptions {
        verify_each: true,
        print_after: None,
    };
    match manager::run(&mut module, &pipeline, opts) {
        Ok(()) => {}
        Err(PipelineError::Pass(_, errors)) => {
            for e in errors {
                let what = if e.code == crate::diagnostics::Code::E0999 {
                    e.message
                } else {
                    format!("{}: {}", e.code.phrase(), e.message)
                };
                match e.op {
                    Some(op) => eprintln!("{}: error: {what}", at(&module, op)),
                    None => eprintln!("{name}: error: {what}"),
                }
            }
            return 1;
        }
        Err(PipelineError::Verify(p, errors)) => {
            for e in &errors {
                eprintln!(
                    "{name}: error: after pass `{p}`: '{}' op {}",
                    module.op(e.op).opcode.name(),
                    e.message
                );
            }
            return 1;
        }
    }
    print!("{}", ir::print::print_module(&module));
    0
}
