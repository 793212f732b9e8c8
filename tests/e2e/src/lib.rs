//! crossrole's end-to-end suite: crossroled, the SDK and the CLI against LocalStack and moto.
