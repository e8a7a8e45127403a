fn main() {
    std::process::exit(kernelscript::driver::main());
}
