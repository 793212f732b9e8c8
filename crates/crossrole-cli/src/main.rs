//! `crossrole`: the command line for the crossrole control plane.

fn main() {
    eprintln!("crossrole: not implemented yet");
    std::process::exit(1);
}
