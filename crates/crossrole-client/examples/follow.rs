//! Follow the latest operation of a spec: print each account's outcome as it finishes, then the counts.
//!
//! ```sh
//! CROSSROLE_ENDPOINT=http://127.0.0.1:50051 CROSSROLE_TOKEN=... cargo run -p crossrole-client --example follow -- security-audit
//! ```

use crossrole_client::{Client, proto};
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("CROSSROLE_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    let client = Client::builder()
        .endpoint(endpoint)
        .token(std::env::var("CROSSROLE_TOKEN").unwrap_or_default())
        .connect()
        .await?;
    let name = std::env::args().nth(1).ok_or("usage: follow <spec name>")?;
    let ops = client
        .list_operations(proto::ListOperationsRequest { spec_name: name, page_size: 1, ..Default::default() })
        .await?;
    let Some(op) = ops.operations.into_iter().next() else {
        println!("no operation for that spec yet");
        return Ok(());
    };
    let handle = client.operation_handle(op.id);
    let events = handle.events();
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        if let Some(proto::operation_event::Event::AccountFinished(f)) = event?.event {
            let r = f.result.unwrap_or_default();
            println!("{} {:?}", r.account_id, proto::AccountOutcome::try_from(r.outcome));
        }
    }
    println!("{:?}", handle.get().await?.counts);
    Ok(())
}
