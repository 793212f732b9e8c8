//! `crossroled`: the crossrole gRPC control plane.

fn main() {
    eprintln!("crossroled: not implemented yet");
    std::process::exit(1);
}
