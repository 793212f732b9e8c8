//! crossroled, the crossrole control plane: the v1 gRPC services over the engine and the journal.
