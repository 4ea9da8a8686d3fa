"""One share consumer of the bench's share scenario (confluent-kafka's ShareConsumer).

Usage: share_worker.py BOOTSTRAP GROUP TOPIC implicit|explicit
       share_worker.py --earliest BOOTSTRAP GROUP   (sets the group's share.auto.offset.reset)

Prints "n COUNT" whenever its count of records read grows; stops on SIGINT."""

import signal
import sys


def set_earliest(bootstrap: str, group: str) -> None:
    # kafka-python's admin client: librdkafka's has no GROUP config resource (32).
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    resource = ConfigResource(ConfigResourceType.GROUP, group, configs={"share.auto.offset.reset": "earliest"})
    result = admin.alter_configs([resource], raise_on_unknown=False, incremental=True)
    admin.close()
    print("configured", result, flush=True)


def consume(bootstrap: str, group: str, topic: str, mode: str, stop: list) -> None:
    from confluent_kafka import AcknowledgeType, ShareConsumer

    c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                       "share.acknowledgement.mode": mode, "fetch.wait.max.ms": 100})
    c.subscribe([topic])
    n = 0
    explicit = mode == "explicit"
    while not stop:
        got = 0
        for m in c.poll(0.2):
            if m.error() is not None:
                print("error", m.error(), flush=True)
                continue
            if explicit:
                c.acknowledge(m, AcknowledgeType.ACCEPT)
            got += 1
        if got:
            n += got
            print("n", n, flush=True)
    # Acknowledges what the last poll returned (close alone would release it); a consumer
    # that read nothing has nothing to acknowledge.
    if n:
        c.commit_sync()
    c.close()


if __name__ == "__main__":
    if sys.argv[1] == "--earliest":
        set_earliest(sys.argv[2], sys.argv[3])
    else:
        # Before anything slow: a SIGINT that comes early still means "close and stop".
        stopping: list = []
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        consume(*sys.argv[1:5], stopping)
