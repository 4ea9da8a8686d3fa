//! InitProducerId for idempotent producers.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::error::{code, storage_error_code, NONE};

/// Allocates a fresh producer id at epoch 0, as Kafka does for a producer without a
/// transactional id. Transactional ids need the transaction coordinator, not built yet.
pub(crate) fn init_producer_id(
    broker: &Broker,
    req: InitProducerIdRequest,
    _version: i16,
) -> InitProducerIdResponse {
    let mut r = InitProducerIdResponse::default();
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    if req.transactional_id.is_some() {
        tracing::warn!(
            "InitProducerId with a transactional.id: transactions are not supported yet"
        );
        r.error_code = code(ResponseError::InvalidRequest);
        return r;
    }
    match broker.storage.allocate_producer_id() {
        Ok(id) => {
            r.error_code = NONE;
            r.producer_id = ProducerId(id);
            r.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate a producer id");
            r.error_code = storage_error_code(&e);
        }
    }
    r
}
