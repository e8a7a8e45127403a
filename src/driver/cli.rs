//! Command-line surface (docs/language.md §1.1). Usage errors exit with status 2 (clap's default).

use crate::vocab::Target;
use clap::builder::TypedValueParser as _;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "ksc",
    version,
    about = "ksc — the KernelScript compiler",
    long_about = "ksc compiles one KernelScript (.ks) file into everything it needs: an eBPF object for the \
kernel-side programs, a native executable for `main`, and kernel-module C for @kfunc functions.\n\n\
Examples:\n  ksc check firewall.ks            type-check and run every static check\n  \
ksc --emit=ast firewall.ks       print the parsed syntax tree\n  \
ksc build firewall.ks -o out/    write out/firewall.bpf.o and out/firewall\n  \
ksc test firewall.ks             run the file's @test functions\n  \
ksc --emit=ks-ir firewall.ks     print the high-level IR\n  \
ksc opt --passes=partition-bpf x.ksir   run IR passes over textual IR",
    subcommand_negates_reqs = true,
    override_usage = "ksc [OPTIONS] FILE\n       ksc [OPTIONS] <COMMAND> [ARGS]"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub compile: CompileArgs,

    /// Options of every command, accepted before or after the subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// The compile form's own arguments, which a subcommand does not take.
const COMPILE_ONLY: [&str; 5] = ["file", "target", "emit", "out", "test"];

impl Cli {
    /// Parses the command line; usage errors print clap's message and exit 2.
    pub fn parse_args() -> Cli {
        let matches = Cli::command().get_matches();
        reject_compile_args_with_subcommand(&matches);
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// Global options may stand before the subcommand (`ksc --time-report build f.ks`), so clap
/// cannot refuse every top-level argument next to a subcommand; the compile form's own ones
/// (`ksc --emit=obj build f.ks`) are refused here, as clap would.
fn reject_compile_args_with_subcommand(matches: &ArgMatches) {
    let Some((sub, _)) = matches.subcommand() else {
        return;
    };
    let mut cmd = Cli::command();
    for id in COMPILE_ONLY {
        if matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let shown = cmd
            .get_arguments()
            .find(|a| a.get_id() == id)
            .map(|a| match (a.get_long(), a.get_short()) {
                (Some(l), _) => format!("--{l}"),
                (None, Some(c)) => format!("-{c}"),
                _ => a
                    .get_value_names()
                    .and_then(|v| v.first())
                    .map_or_else(|| id.to_uppercase(), |v| format!("<{v}>")),
            })
            .unwrap_or_else(|| id.to_string());
        cmd.error(
            clap::error::ErrorKind::ArgumentConflict,
            format!(
                "the argument '{shown}' cannot be used with the subcommand '{sub}' (it belongs \
                 to the compile form `ksc [OPTIONS] FILE`; options of the subcommand follow its name)"
            ),
        )
        .exit();
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse, resolve, type-check and run every static check; produce nothing.
    Check {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Compile and write the artifacts (NAME.bpf.o, the NAME executable, NAME.mod.c) into DIR.
    Build {
        #[command(flatten)]
        common: CommonArgs,
        /// Output directory (created with parents); default ./NAME
        #[arg(short = 'o', value_name = "DIR")]
        out: Option<PathBuf>,
        /// Build the test executable NAME.test instead of the program
        #[arg(long)]
        test: bool,
    },
    /// Load every kernel-side program into the running kernel's verifier and report each.
    Verify {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Build in test mode and run the @test functions.
    Test {
        #[command(flatten)]
        common: CommonArgs,
        /// Run only tests whose name contains SUBSTR
        #[arg(long, value_name = "SUBSTR")]
        filter: Option<String>,
        /// Seconds each test may run before it fails as timed out; 0: no limit [default: 10]
        #[arg(long, value_name = "SECS")]
        timeout: Option<u32>,
    },
    /// Parse textual KS-IR, run the named passes, verify and print the result (like mlir-opt).
    Opt {
        /// A .ksir file (`-` for standard input)
        #[arg(value_name = "FILE", required_unless_present = "list_passes")]
        file: Option<PathBuf>,
        /// Passes to run in order, comma separated (`ksc opt --list-passes` names them)
        #[arg(long, value_delimiter = ',', value_name = "PASSES")]
        passes: Vec<String>,
        /// List the available passes and exit
        #[arg(long)]
        list_passes: bool,
    },
    /// Print the KS-IR op reference generated from ir-specs/.
    IrReference,
    /// Print the reference of the BPF helpers kernel code may call by name.
    HelperReference,
    /// Build into a temporary directory and run the executable with ARGS.
    Run {
        #[command(flatten)]
        common: CommonArgs,
        /// Arguments passed to the program (after `--`)
        #[arg(last = true)]
        args: Vec<String>,
    },
}

/// The input every compiling command takes.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// The KernelScript source file
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Options every command takes, before or after the subcommand's name.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Kernel BTF to resolve kernel types against [default: /sys/kernel/btf/vmlinux]
    #[arg(long, value_name = "PATH", global = true)]
    pub btf: Option<PathBuf>,
    /// Reject every ksc extension of the reference language (E0011)
    #[arg(long, global = true)]
    pub compat: bool,
    /// How to print diagnostics
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text, value_name = "FORMAT", global = true)]
    pub diagnostics: DiagnosticFormat,
    /// Print how long each compiler stage took to standard error
    #[arg(long, global = true)]
    pub time_report: bool,
    /// Warn about constructs an older kernel (e.g. 6.1) lacks, and say where the runtime falls back
    #[arg(long, value_name = "VERSION", global = true)]
    pub kernel: Option<crate::sema::kernel_floor::KernelVersion>,
    #[command(flatten)]
    pub codegen: CodegenArgs,
}

/// Code generation options.
#[derive(Args, Debug, Clone)]
pub struct CodegenArgs {
    /// BPF CPU version: v1, v2, v3 (alu32 and jmp32) or v4 (signed division, more)
    #[arg(long, value_name = "VERSION", default_value = "v3", value_parser = ["v1", "v2", "v3", "v4"], global = true)]
    pub bpf_cpu: String,
    /// Optimisation level: 0 (no IR optimisation: code as written, for debugging) or 2
    #[arg(short = 'O', value_name = "LEVEL", default_value = "2", value_parser = ["0", "2"], global = true)]
    pub opt_level: String,
    /// Print the KS-IR to stderr after the named pass (`all`: after every pass); see
    /// `ksc opt --list-passes`
    #[arg(long, value_name = "PASS", global = true, value_parser = pass_name_parser())]
    pub print_after: Option<String>,
    /// Verify the KS-IR after every pass, not only at the end of each pipeline
    #[arg(long, global = true)]
    pub verify_each: bool,
}

/// `--print-after` values: a registered pass, or `all`.
fn pass_name_parser() -> clap::builder::PossibleValuesParser {
    let names: Vec<&'static str> = crate::passes::registry::list().map(|p| p.name).collect();
    clap::builder::PossibleValuesParser::new(std::iter::once("all").chain(names))
}

/// The compile form: `ksc [--target=…] [--emit=…] [-o OUT] FILE`.
#[derive(Args, Debug)]
pub struct CompileArgs {
    /// The KernelScript source file
    #[arg(value_name = "FILE", required = true)]
    pub file: Option<PathBuf>,
    /// Which targets to compile, comma separated. With --emit=llvm-ir, asm or obj (one output),
    /// the kernel side is emitted when bpf is selected, else the userspace side
    #[arg(long, value_delimiter = ',', value_parser = target_parser(), default_values = ["bpf", "host", "kmod"])]
    pub target: Vec<Target>,
    /// What to produce
    #[arg(long, value_enum, default_value_t = Emit::Exe)]
    pub emit: Emit,
    /// Output file or directory
    #[arg(short = 'o', value_name = "OUT")]
    pub out: Option<PathBuf>,
    /// Compile the userspace side as the test runner (§17) instead of the program
    #[arg(long)]
    pub test: bool,
}

/// `--target` values: the IR's own targets, by their IR spelling.
fn target_parser() -> impl clap::builder::TypedValueParser<Value = Target> {
    clap::builder::PossibleValuesParser::new(Target::ALL.map(Target::name))
        .map(|name| Target::from_name(&name).expect("a listed target"))
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// The parsed syntax tree
    Ast,
    /// KernelScript high-level IR
    KsIr,
    /// The bpf-level dialect
    BpfIr,
    /// The host-level dialect
    HostIr,
    /// LLVM IR
    LlvmIr,
    /// Target assembly
    Asm,
    /// Object files
    Obj,
    /// Linked executable (the default)
    Exe,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiagnosticFormat {
    Text,
    Json,
}
