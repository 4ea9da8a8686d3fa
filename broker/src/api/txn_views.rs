//! The operator views of transactions (what `kafka-transactions.sh` uses):
//! DescribeTransactions, ListTransactions and DescribeProducers.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedTransaction;
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_storage::TxnState;

use super::topic_name;
use super::txn::{may_txn, TXN_AUTH_FAILED};
use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::NONE;
use crate::session::Session;
use crate::txn::ListFilter;

answer!(DescribeTransactionsResponse: [transaction_states => error_code]);
answer!(ListTransactionsResponse: [error_code]);
answer!(DescribeProducersResponse: [topics => partitions => error_code]);

/// DescribeTransactions.
pub(crate) async fn describe_transactions(
    broker: &Broker,
    session: &Session,
    req: DescribeTransactionsRequest,
    _version: i16,
) -> Reply<DescribeTransactionsResponse> {
    let mut res = DescribeTransactionsResponse::default();
    for id in req.transactional_ids {
        let mut state = TransactionState::default().with_transactional_id(id.clone());
        state.transaction_state = StrBytes::from_static_str("");
        state.producer_id = ProducerId(-1);
        state.producer_epoch = -1;
        state.transaction_start_time_ms = -1;
        if id.is_empty() {
            state.error_code = ResponseError::InvalidRequest.code();
        } else if !may_txn(broker, session, Operation::Describe, &id) {
            state.error_code = TXN_AUTH_FAILED;
        } else if let Err(e) = broker.txns.check_coordinator(&id) {
            state.error_code = e.code();
        } else {
            match broker.txns.describe(&id) {
                None => state.error_code = ResponseError::TransactionalIdNotFound.code(),
                Some(v) => {
                    state.error_code = NONE;
                    state.transaction_state = StrBytes::from_static_str(v.state.name());
                    state.transaction_timeout_ms = v.timeout_ms;
                    state.transaction_start_time_ms = v.start_ms;
                    state.producer_id = ProducerId(v.producer_id);
                    state.producer_epoch = v.producer_epoch;
                    for (topic, partition) in v.partitions {
                        match state.topics.last_mut() {
                            Some(t) if *t.topic == *topic => t.partitions.push(partition),
                            _ => state.topics.push(
                                TopicData::default()
                                    .with_topic(topic_name(&topic))
                                    .with_partitions(vec![partition]),
                            ),
                        }
                    }
                }
            }
        }
        res.transaction_states.push(state);
    }
    Reply::new(res)
}

/// ListTransactions, with state, producer id, duration (v1) and id pattern (v2) filters.
pub(crate) async fn list_transactions(
    broker: &Broker,
    session: &Session,
    req: ListTransactionsRequest,
    version: i16,
) -> Reply<ListTransactionsResponse> {
    let mut res = ListTransactionsResponse::default();
    let mut states = Vec::new();
    for name in &req.state_filters {
        match TxnState::ALL
            .into_iter()
            .find(|s| s.name() == name.as_str())
        {
            Some(s) => states.push(s),
            None => res.unknown_state_filters.push(name.clone()),
        }
    }
    if !req.state_filters.is_empty() && states.is_empty() {
        // Only unknown states asked for: nothing can match.
        res.error_code = NONE;
        return Reply::new(res);
    }
    let id_pattern = match req.transactional_id_pattern.as_deref() {
        Some(p) if version >= 2 && !p.is_empty() => match regex::Regex::new(p) {
            Ok(re) => Some(re),
            Err(_) => {
                res.error_code = ResponseError::InvalidRegularExpression.code();
                return Reply::new(res);
            }
        },
        _ => None,
    };
    let producer_ids: Vec<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let filter = ListFilter {
        states,
        producer_ids: &producer_ids,
        min_duration_ms: if version >= 1 {
            req.duration_filter
        } else {
            -1
        },
        id_pattern,
    };
    res.error_code = NONE;
    res.transaction_states = broker
        .txns
        .list(&filter)
        .into_iter()
        .filter(|(id, _, _)| may_txn(broker, session, Operation::Describe, id))
        .map(|(id, pid, state)| {
            ListedTransaction::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
                .with_producer_id(ProducerId(pid))
                .with_transaction_state(StrBytes::from_static_str(state.name()))
        })
        .collect();
    Reply::new(res)
}

/// DescribeProducers: the producer state of each partition.
pub(crate) async fn describe_producers(
    broker: &Broker,
    session: &Session,
    req: DescribeProducersRequest,
    _version: i16,
) -> Reply<DescribeProducersResponse> {
    let mut res = DescribeProducersResponse::default();
    for t in req.topics {
        let allowed = session.may(broker, Operation::Read, Resource::Topic, &t.name);
        let topic = broker.storage.topic(&t.name).filter(|_| allowed);
        let mut tr = TopicResponse::default().with_name(t.name.clone());
        for index in t.partition_indexes {
            let mut pr = PartitionResponse::default().with_partition_index(index);
            let partition = topic.as_ref().and_then(|tp| tp.partition(index));
            match partition {
                None if !allowed => pr.error_code = ResponseError::TopicAuthorizationFailed.code(),
                None => pr.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(p) => {
                    pr.error_code = NONE;
                    pr.active_producers = p
                        .producers()
                        .into_iter()
                        .map(|s| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(s.producer_id))
                                .with_producer_epoch(i32::from(s.producer_epoch))
                                .with_last_sequence(s.last_sequence)
                                .with_last_timestamp(s.last_timestamp)
                                .with_coordinator_epoch(s.coordinator_epoch)
                                .with_current_txn_start_offset(s.current_txn_start_offset)
                        })
                        .collect();
                }
            }
            tr.partitions.push(pr);
        }
        res.topics.push(tr);
    }
    Reply::new(res)
}
