//! InitProducerId: a fresh producer id for an idempotent producer, or, with a
//! transactional id, the transaction coordinator's id and epoch (fencing older producers).

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use kafka_protocol::ResponseError;

use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::api::txn::{fenced_for, may_txn};
use crate::broker::Broker;
use crate::error::{storage_error_code, NONE};
use crate::session::Session;
use crate::txn::ProducerRef;

answer!(InitProducerIdResponse: [error_code]);

/// Answers InitProducerId.
pub(crate) async fn init_producer_id(
    broker: &Broker,
    session: &Session,
    req: InitProducerIdRequest,
    version: i16,
) -> Reply<InitProducerIdResponse> {
    let mut r = InitProducerIdResponse::default();
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    if let Some(id) = &req.transactional_id {
        if !may_txn(broker, session, Operation::Write, id) {
            r.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
            return Reply::new(r);
        }
        // KIP-360 (v3+): a producer re-initialising names the id and epoch it had.
        let expected = (version >= 3 && req.producer_id.0 >= 0).then_some(ProducerRef {
            producer_id: req.producer_id.0,
            producer_epoch: req.producer_epoch,
        });
        match broker
            .txns
            .init_producer_id(id, req.transaction_timeout_ms, expected)
            .await
        {
            Ok(p) => {
                r.error_code = NONE;
                r.producer_id = ProducerId(p.producer_id);
                r.producer_epoch = p.producer_epoch;
            }
            Err(e) => r.error_code = fenced_for(e, version, 4),
        }
        return Reply::new(r);
    }
    // KIP-679: IdempotentWrite on the cluster, or Write on some topic.
    if !session.may_cluster(broker, Operation::IdempotentWrite)
        && !broker.authorizer.authorize_any(
            &session.principal,
            session.peer.ip(),
            Operation::Write,
            Resource::Topic,
        )
    {
        r.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return Reply::new(r);
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
    Reply::new(r)
}
