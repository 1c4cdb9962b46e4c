#!/usr/bin/env python3
"""Converts Apache Kafka's JSON message definitions into the project's schemas.

Run by hand when Kafka's definitions change; the output in protocol/schemas/ is
committed so that the build never needs ../shared. Keeps the wire facts (names,
types, versions, tags, defaults) and drops comments and prose.

  protocol/codegen/import_schemas.py ../shared/kafka-protocol/message protocol/schemas
"""
import json
import os
import sys

# Client-facing APIs (api-versions.md: scope "client" or "admin") plus the
# headers and the consumer-protocol payloads that groups carry as bytes.
APIS = [
    "Produce", "Fetch", "ListOffsets", "Metadata", "OffsetCommit", "OffsetFetch",
    "FindCoordinator", "JoinGroup", "Heartbeat", "LeaveGroup", "SyncGroup",
    "DescribeGroups", "ListGroups", "SaslHandshake", "ApiVersions", "CreateTopics",
    "DeleteTopics", "DeleteRecords", "InitProducerId", "OffsetForLeaderEpoch",
    "AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn", "TxnOffsetCommit",
    "DescribeAcls", "CreateAcls", "DeleteAcls", "DescribeConfigs", "AlterConfigs",
    "AlterReplicaLogDirs", "DescribeLogDirs", "SaslAuthenticate", "CreatePartitions",
    "CreateDelegationToken", "RenewDelegationToken", "ExpireDelegationToken",
    "DescribeDelegationToken", "DeleteGroups", "ElectLeaders", "IncrementalAlterConfigs",
    "AlterPartitionReassignments", "ListPartitionReassignments", "OffsetDelete",
    "DescribeClientQuotas", "AlterClientQuotas", "DescribeUserScramCredentials",
    "AlterUserScramCredentials", "DescribeQuorum", "UpdateFeatures", "DescribeCluster",
    "DescribeProducers", "UnregisterBroker", "DescribeTransactions", "ListTransactions",
    "ConsumerGroupHeartbeat", "ConsumerGroupDescribe", "GetTelemetrySubscriptions",
    "PushTelemetry", "ListClientMetricsResources", "DescribeTopicPartitions",
    "WriteTxnMarkers",
]
EXTRA = ["RequestHeader", "ResponseHeader", "ConsumerProtocolSubscription",
         "ConsumerProtocolAssignment"]

# Facts that changed after the Kafka commit the reference copy was taken from.
OVERRIDES = {
    # KAFKA-19444 (Kafka 4.0.1/4.1.0) restored JoinGroup v0-1.
    "JoinGroupRequest": {"validVersions": "0-9"},
    "JoinGroupResponse": {"validVersions": "0-9"},
}

DROP_KEYS = {"about", "entityType", "zeroCopy", "mapKey", "listeners"}


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DROP_KEYS}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def render(node, indent):
    """One line per field; nested field lists indented, so diffs stay readable."""
    if isinstance(node, dict) and any(isinstance(v, list) and v and isinstance(v[0], dict)
                                      for v in node.values()):
        inner = indent + "  "
        parts = []
        for k, v in node.items():
            if isinstance(v, list) and v and isinstance(v[0], dict):
                items = ",\n".join(inner + "  " + render(x, inner + "  ") for x in v)
                parts.append(f'{inner}"{k}": [\n{items}\n{inner}]')
            else:
                parts.append(f"{inner}{json.dumps(k)}: {json.dumps(v)}")
        return "{\n" + ",\n".join(parts) + "\n" + indent + "}"
    return json.dumps(node)


def load(path):
    with open(path) as f:
        text = "\n".join(l for l in f if not l.lstrip().startswith("//"))
    return json.loads(text)


def main(src, dst):
    names = [a + s for a in APIS for s in ("Request", "Response")] + EXTRA
    for name in names:
        schema = strip(load(os.path.join(src, name + ".json")))
        schema.update(OVERRIDES.get(name, {}))
        with open(os.path.join(dst, name + ".json"), "w") as f:
            f.write(render(schema, "") + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
