"""Where the task runs (infra/network.py), for each `serviceNetwork` choice, under the
program's mocks: egress only, no inbound, no automatic public IP unless `public-ip`."""

from __future__ import annotations

import pytest

from infra.config import ConfigError
from infra.network import ZONES
from tests.infra.harness import EXISTING_SUBNETS, run_program

SUBNET = "aws:ec2/subnet:Subnet"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"


@pytest.fixture(scope="module")
def networks(artifact):
    """The network component and the service's network settings, per choice."""
    found = {}
    for mode, extra in (
        ("private-nat", {}),
        ("private-endpoints", {}),
        ("public-ip", {}),
        ("subnets", {"serviceSubnetIds": sorted(EXISTING_SUBNETS)}),
    ):
        run = run_program(
            "dev", artifact.manifest_path, overrides={"serviceNetwork": mode, **extra}
        )
        service = run.under("strategy").one("aws:ecs/service:Service").inputs
        found[mode] = (run.under("service-network"), service["networkConfiguration"])
    return found


def ids(resources) -> list[str]:
    # In name order: the SDK completes registrations on a thread pool, so the record's
    # order is not the program's (under load, public-1 can land before public-0). The
    # names carry the program's index (`public-0`, `public-1`), so this is its order.
    return [f"{r.name}-id" for r in sorted(resources, key=lambda r: r.name)]


def assert_egress_only(net) -> None:
    task = next(
        g for g in net.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("-task")
    )
    assert task.inputs["name"] == "strategy-dev-task"
    assert task.inputs.get("ingress", []) == []  # nothing may connect to the task
    (egress,) = task.inputs["egress"]
    assert (egress["protocol"], egress["fromPort"], egress["toPort"]) == ("tcp", 443, 443)


def test_private_nat_is_the_default_and_meets_ecs_2(networks, runs):
    # The shipped stacks leave serviceNetwork at its default.
    assert (
        runs["dev"].under("strategy").one("aws:ecs/service:Service").inputs["networkConfiguration"]
        == (networks["private-nat"][1])
    )
    net, config = networks["private-nat"]
    assert config["assignPublicIp"] is False  # FSBP ECS.2
    private = [s for s in net.of_type(SUBNET) if "private" in s.name]
    public = [s for s in net.of_type(SUBNET) if "public" in s.name]
    assert config["subnets"] == ids(private)
    # Two zones for the task, one public subnet for the one NAT gateway
    assert len(private) == ZONES and len(public) == 1
    assert len({s.inputs["availabilityZone"] for s in private}) == ZONES
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in net.of_type(SUBNET))
    (nat,) = net.of_type("aws:ec2/natGateway:NatGateway")
    assert nat.inputs["subnetId"] == f"{public[0].name}-id"
    assert nat.inputs["allocationId"] == f"{net.one('aws:ec2/eip:Eip').name}-id"
    routes = {t.name: t.inputs["routes"] for t in net.of_type(ROUTE_TABLE)}
    assert routes["service-network-private-routes"] == [
        {"cidrBlock": "0.0.0.0/0", "natGatewayId": f"{nat.name}-id"}
    ]
    assert routes["service-network-public-routes"][0]["gatewayId"] == "service-network-igw-id"
    assert_egress_only(net)


def test_every_new_vpc_has_free_gateway_endpoints_and_an_empty_default_group(networks):
    for mode in ("private-nat", "private-endpoints", "public-ip"):
        net, _ = networks[mode]
        gateways = {
            e.inputs["serviceName"]: e.inputs
            for e in net.of_type(ENDPOINT)
            if e.inputs["vpcEndpointType"] == "Gateway"
        }
        assert set(gateways) == {
            "com.amazonaws.us-east-1.s3",
            "com.amazonaws.us-east-1.dynamodb",
        }, mode
        tables = sorted(ids(net.of_type(ROUTE_TABLE)))  # a set to AWS: compared as one
        assert all(sorted(g["routeTableIds"]) == tables for g in gateways.values()), mode
        default = net.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup").inputs  # FSBP EC2.2
        assert (default["ingress"], default["egress"]) == ([], []), mode
        vpc = net.one("aws:ec2/vpc:Vpc").inputs
        assert vpc["enableDnsSupport"] is vpc["enableDnsHostnames"] is True


def test_private_endpoints_has_no_route_to_the_internet(networks):
    net, config = networks["private-endpoints"]
    assert config["assignPublicIp"] is False
    assert net.of_type("aws:ec2/natGateway:NatGateway") == []
    assert net.of_type("aws:ec2/internetGateway:InternetGateway") == []
    assert [t.inputs["routes"] for t in net.of_type(ROUTE_TABLE)] == [[]]
    interfaces = {
        e.inputs["serviceName"]: e.inputs
        for e in net.of_type(ENDPOINT)
        if e.inputs["vpcEndpointType"] == "Interface"
    }
    assert set(interfaces) == {
        f"com.amazonaws.us-east-1.{s}" for s in ("ecr.api", "ecr.dkr", "logs")
    }
    group = next(
        g
        for g in net.of_type("aws:ec2/securityGroup:SecurityGroup")
        if g.name.endswith("-endpoints")
    )
    for endpoint in interfaces.values():
        assert endpoint["privateDnsEnabled"] is True
        assert endpoint["securityGroupIds"] == [f"{group.name}-id"]
        assert len(endpoint["subnetIds"]) == 1  # billed per zone: one zone
    # The endpoints take HTTPS from the task's group, and nothing else
    (ingress,) = group.inputs["ingress"]
    assert ingress["securityGroups"] == ["service-network-task-id"]
    assert (ingress["fromPort"], ingress["toPort"]) == (443, 443)
    assert_egress_only(net)


def test_public_ip_is_the_one_choice_with_a_public_address(networks):
    net, config = networks["public-ip"]
    assert config["assignPublicIp"] is True
    public = [s for s in net.of_type(SUBNET) if "public" in s.name]
    assert config["subnets"] == ids(public) and len(public) == ZONES
    assert net.of_type("aws:ec2/natGateway:NatGateway") == []
    assert_egress_only(net)


def test_existing_subnets_get_only_the_tasks_group_in_their_vpc(networks):
    net, config = networks["subnets"]
    assert config["subnets"] == sorted(EXISTING_SUBNETS)
    assert config["assignPublicIp"] is False
    assert {r.type for r in net.resources} == {"aws:ec2/securityGroup:SecurityGroup"}
    assert net.one("aws:ec2/securityGroup:SecurityGroup").inputs["vpcId"] == "vpc-0fedcba9"
    assert_egress_only(net)


def test_a_subnet_that_does_not_exist_fails_the_preview(artifact):
    run = run_program(
        "dev",
        artifact.manifest_path,
        overrides={"serviceNetwork": "subnets", "serviceSubnetIds": ["subnet-0badbad0"]},
        raises=Exception,
    )
    assert "subnet-0badbad0" in str(run.error)
    assert run.of_type("aws:ecs/service:Service") == []


def test_an_alpaca_broker_behind_endpoints_only_is_refused(artifact):
    overrides = {"serviceNetwork": "private-endpoints", "tradingMode": "alpaca-paper"}
    run = run_program("dev", artifact.manifest_path, overrides=overrides, raises=ConfigError)
    assert "cloud-trading-bot:serviceNetwork = 'private-endpoints': must reach the internet" in str(
        run.error
    )
    assert run.resources == []
