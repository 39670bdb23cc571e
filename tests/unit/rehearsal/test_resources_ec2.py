"""The strategy service's network handlers (infra/rehearsal/resources_ec2.py) against
in-process moto: what the emulator holds afterwards is what infra/network.py declares."""

from __future__ import annotations

import pytest
from pulumi.runtime import MockCallArgs

from infra.rehearsal.errors import ResourceFailed

HTTPS_OUT = {
    "description": "HTTPS out",
    "protocol": "tcp",
    "fromPort": 443.0,  # Pulumi sends every number as a float
    "toPort": 443.0,
    "cidrBlocks": ["0.0.0.0/0"],
}


def _vpc(deploy) -> str:
    vpc_id, _ = deploy(
        "aws:ec2/vpc:Vpc", "vpc", cidrBlock="10.80.0.0/22", enableDnsSupport=True,
        enableDnsHostnames=True, tags={"Name": "net-vpc"},
    )  # fmt: skip
    return vpc_id


def _group(aws, group_id: str) -> dict:
    return aws.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]


def test_vpc_has_dns_on_and_reports_its_arn_and_default_group(deploy, aws):
    # WHEN a VPC is declared with DNS support and hostnames
    _, out = deploy(
        "aws:ec2/vpc:Vpc", "vpc", cidrBlock="10.80.0.0/22", enableDnsSupport=True,
        enableDnsHostnames=True,
    )  # fmt: skip
    ec2 = aws.client("ec2")
    # THEN both attributes are on in the emulator
    attr = ec2.describe_vpc_attribute(VpcId=out["id"], Attribute="enableDnsHostnames")
    assert attr["EnableDnsHostnames"]["Value"] is True
    # AND the outputs carry the ARN (the network reads its region from it) and the
    # default group, which really is the VPC's
    assert out["arn"] == f"arn:aws:ec2:us-east-1:{aws.account_id}:vpc/{out['id']}"
    assert _group(aws, out["defaultSecurityGroupId"])["VpcId"] == out["id"]


def test_default_security_group_is_emptied(deploy, aws):
    # GIVEN a new VPC, whose default group allows all egress and all traffic between members
    vpc_id = _vpc(deploy)
    # WHEN the program adopts it with no rules (FSBP EC2.2)
    group_id, _ = deploy(
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "default", vpcId=vpc_id,
        ingress=[], egress=[],
    )  # fmt: skip
    # THEN it holds no rule at all
    group = _group(aws, group_id)
    assert group["GroupName"] == "default"
    assert group["IpPermissions"] == [] and group["IpPermissionsEgress"] == []


def test_security_group_holds_exactly_the_declared_rules(deploy, aws):
    vpc_id = _vpc(deploy)
    # WHEN a group declares no inbound rule and HTTPS out only
    task_id, out = deploy(
        "aws:ec2/securityGroup:SecurityGroup", "task", name="task-sg", description="task",
        vpcId=vpc_id, ingress=[], egress=[HTTPS_OUT],
    )  # fmt: skip
    group = _group(aws, task_id)
    # THEN the default allow-all egress is gone, and 443/tcp is the one rule
    assert group["IpPermissions"] == []
    (egress,) = group["IpPermissionsEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)
    assert out["name"] == "task-sg" and out["arn"].endswith(f"security-group/{task_id}")
    # AND another group can admit it by id
    endpoint_id, _ = deploy(
        "aws:ec2/securityGroup:SecurityGroup", "endpoints", name="ep-sg", vpcId=vpc_id,
        ingress=[{**HTTPS_OUT, "cidrBlocks": None, "securityGroups": [task_id]}], egress=[],
    )  # fmt: skip
    (ingress,) = _group(aws, endpoint_id)["IpPermissions"]
    assert [p["GroupId"] for p in ingress["UserIdGroupPairs"]] == [task_id]


def test_subnets_gateways_and_routes(deploy, aws):
    vpc_id = _vpc(deploy)
    ec2 = aws.client("ec2")
    # GIVEN a public subnet with an internet gateway, and a private one behind a NAT
    public, pub_out = deploy(
        "aws:ec2/subnet:Subnet", "public-0", vpcId=vpc_id, cidrBlock="10.80.2.0/24",
        availabilityZone="us-east-1a", mapPublicIpOnLaunch=False,
    )  # fmt: skip
    private, _ = deploy(
        "aws:ec2/subnet:Subnet", "private-0", vpcId=vpc_id, cidrBlock="10.80.0.0/24",
        availabilityZone="us-east-1b",
    )  # fmt: skip
    igw, _ = deploy("aws:ec2/internetGateway:InternetGateway", "igw", vpcId=vpc_id)
    eip, eip_out = deploy("aws:ec2/eip:Eip", "nat-ip", domain="vpc")
    nat, _ = deploy("aws:ec2/natGateway:NatGateway", "nat", allocationId=eip, subnetId=public)
    table, _ = deploy(
        "aws:ec2/routeTable:RouteTable", "private-routes", vpcId=vpc_id,
        routes=[{"cidrBlock": "0.0.0.0/0", "natGatewayId": nat}],
    )  # fmt: skip
    deploy(
        "aws:ec2/routeTableAssociation:RouteTableAssociation", "assoc", routeTableId=table,
        subnetId=private,
    )  # fmt: skip
    # THEN the emulator holds them as declared
    assert pub_out["availabilityZone"] == "us-east-1a" and pub_out["mapPublicIpOnLaunch"] is False
    attached = ec2.describe_internet_gateways(InternetGatewayIds=[igw])["InternetGateways"][0]
    assert [a["VpcId"] for a in attached["Attachments"]] == [vpc_id]
    assert eip_out["allocationId"] == eip and eip_out["publicIp"]
    nat_gw = ec2.describe_nat_gateways(NatGatewayIds=[nat])["NatGateways"][0]
    assert nat_gw["SubnetId"] == public
    routes = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]
    default = [r for r in routes["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    assert default[0]["NatGatewayId"] == nat
    assert [a["SubnetId"] for a in routes["Associations"]] == [private]


def test_a_route_with_two_targets_is_refused(deploy):
    vpc_id = _vpc(deploy)
    with pytest.raises(ResourceFailed, match="exactly one target"):
        deploy(
            "aws:ec2/routeTable:RouteTable", "bad", vpcId=vpc_id,
            routes=[{"cidrBlock": "0.0.0.0/0", "gatewayId": "igw-1", "natGatewayId": "nat-1"}],
        )  # fmt: skip


def test_gateway_and_interface_endpoints(deploy, aws):
    vpc_id = _vpc(deploy)
    subnet_id, _ = deploy(
        "aws:ec2/subnet:Subnet", "private-0", vpcId=vpc_id, cidrBlock="10.80.0.0/24"
    )
    table, _ = deploy("aws:ec2/routeTable:RouteTable", "routes", vpcId=vpc_id, routes=[])
    group, _ = deploy("aws:ec2/securityGroup:SecurityGroup", "eps", vpcId=vpc_id, egress=[])
    s3, _ = deploy(
        "aws:ec2/vpcEndpoint:VpcEndpoint", "s3", vpcId=vpc_id,
        serviceName="com.amazonaws.us-east-1.s3", vpcEndpointType="Gateway", routeTableIds=[table],
    )  # fmt: skip
    logs, out = deploy(
        "aws:ec2/vpcEndpoint:VpcEndpoint", "logs", vpcId=vpc_id,
        serviceName="com.amazonaws.us-east-1.logs", vpcEndpointType="Interface",
        privateDnsEnabled=True, subnetIds=[subnet_id], securityGroupIds=[group],
    )  # fmt: skip
    found = {
        e["VpcEndpointId"]: e
        for e in aws.client("ec2").describe_vpc_endpoints(VpcEndpointIds=[s3, logs])["VpcEndpoints"]
    }
    assert found[s3]["RouteTableIds"] == [table]
    assert found[logs]["SubnetIds"] == [subnet_id] and found[logs]["PrivateDnsEnabled"] is True
    assert out["vpcEndpointType"] == "Interface"


def test_availability_zones_and_an_existing_subnet(engine, deploy):
    # The invokes the network calls: the zones it spreads over, a `subnets` stack's subnet.
    zones, _ = engine.call(
        MockCallArgs(
            token="aws:index/getAvailabilityZones:getAvailabilityZones",
            args={"state": "available"},
            provider="",
        )
    )
    assert zones["names"][:2] == ["us-east-1a", "us-east-1b"]
    assert len(zones["zoneIds"]) == len(zones["names"])
    vpc_id = _vpc(deploy)
    subnet_id, _ = deploy("aws:ec2/subnet:Subnet", "s", vpcId=vpc_id, cidrBlock="10.80.1.0/24")
    token = "aws:ec2/getSubnet:getSubnet"
    found, _ = engine.call(MockCallArgs(token=token, args={"id": subnet_id}, provider=""))
    assert found["vpcId"] == vpc_id
    # A subnet that does not exist fails, naming it (the preview fails on it).
    with pytest.raises(ResourceFailed, match="subnet-0badbad0"):
        engine.call(MockCallArgs(token=token, args={"id": "subnet-0badbad0"}, provider=""))
