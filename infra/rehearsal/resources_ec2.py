"""EC2 networking for the strategy service (infra/network.py): the VPC, its emptied
default security group, subnets, internet and NAT gateways, route tables, VPC endpoints
and security groups; and the two invokes the network reads (availability zones, an
existing subnet).

Plain dicts (RESOURCES, INVOKES) the engine merges into its registry: no decorators.
Each handler makes the calls `pulumi up` causes and returns what the AWS provider
reports (ids, ARNs); rules the program declares are applied exactly, so what the
emulator holds is what AWS would hold (a security group's default allow-all egress is
removed when the program declares its own egress, as the provider does).
"""

from __future__ import annotations

from typing import Any

from infra.rehearsal.clients import EmulatorClients, Handler, IdAndOutputs, Inputs, Invoke
from infra.rehearsal.shapes import given, number, require, tag_list


def _tags(inputs: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    # Empty without tags: EC2 takes an empty TagSpecifications list as no tags.
    tags = inputs.get("tags")
    return [{"ResourceType": resource_type, "Tags": tag_list(tags)}] if tags else []


def vpc(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "cidrBlock")
    ec2 = aws.client("ec2")
    created = ec2.create_vpc(CidrBlock=inputs["cidrBlock"], TagSpecifications=_tags(inputs, "vpc"))[
        "Vpc"
    ]
    vpc_id = created["VpcId"]
    # One attribute per call: the EC2 API refuses both in one ModifyVpcAttribute.
    for field, param in (("enableDnsSupport", "EnableDnsSupport"),
                         ("enableDnsHostnames", "EnableDnsHostnames")):  # fmt: skip
        if inputs.get(field) is not None:
            ec2.modify_vpc_attribute(VpcId=vpc_id, **{param: {"Value": bool(inputs[field])}})
    default_group = _default_group(ec2, vpc_id)
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main",
                                                         "Values": ["true"]}]
    )["RouteTables"]  # fmt: skip
    return vpc_id, {
        "id": vpc_id,
        "arn": aws.arn("ec2", f"vpc/{vpc_id}"),
        "cidrBlock": created["CidrBlock"],
        "defaultSecurityGroupId": default_group["GroupId"],
        "mainRouteTableId": tables[0]["RouteTableId"] if tables else "",
        "ownerId": created.get("OwnerId", aws.account_id),
    }


def _default_group(ec2: Any, vpc_id: str) -> dict[str, Any]:
    found = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name",
                                                         "Values": ["default"]}]
    )["SecurityGroups"]  # fmt: skip
    if not found:
        raise ValueError(f"VPC {vpc_id} has no default security group")
    return dict(found[0])


def _permissions(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The provider's ingress/egress blocks as EC2 IpPermissions."""
    out = []
    for rule in rules:
        perm: dict[str, Any] = {"IpProtocol": str(rule.get("protocol", "-1"))}
        if perm["IpProtocol"] not in ("-1", "all"):
            perm["FromPort"] = number(rule.get("fromPort", 0))
            perm["ToPort"] = number(rule.get("toPort", 0))
        else:
            perm["IpProtocol"] = "-1"
        desc = {"Description": rule["description"]} if rule.get("description") else {}
        if rule.get("cidrBlocks"):
            perm["IpRanges"] = [{"CidrIp": c, **desc} for c in rule["cidrBlocks"]]
        if rule.get("ipv6CidrBlocks"):
            perm["Ipv6Ranges"] = [{"CidrIpv6": c, **desc} for c in rule["ipv6CidrBlocks"]]
        if rule.get("securityGroups"):
            perm["UserIdGroupPairs"] = [{"GroupId": g, **desc} for g in rule["securityGroups"]]
        if rule.get("prefixListIds"):
            perm["PrefixListIds"] = [{"PrefixListId": p} for p in rule["prefixListIds"]]
        out.append(perm)
    return out


def _set_rules(ec2: Any, group: dict[str, Any], inputs: dict[str, Any]) -> None:
    """Make the group hold exactly the declared rules (an absent list is left alone for
    ingress; the provider treats a declared empty list as "no rules")."""
    group_id = group["GroupId"]
    current_in = [_strip(p) for p in group.get("IpPermissions") or []]
    current_out = [_strip(p) for p in group.get("IpPermissionsEgress") or []]
    if current_in:
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=current_in)
    if current_out:
        ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=current_out)
    if inputs.get("ingress"):
        ec2.authorize_security_group_ingress(
            GroupId=group_id, IpPermissions=_permissions(inputs["ingress"])
        )
    if inputs.get("egress"):
        ec2.authorize_security_group_egress(
            GroupId=group_id, IpPermissions=_permissions(inputs["egress"])
        )


def _strip(perm: dict[str, Any]) -> dict[str, Any]:
    # Describe answers with empty lists a revoke call does not want.
    return {k: v for k, v in perm.items() if v not in ([], None)}


def default_security_group(
    aws: EmulatorClients, name: str, inputs: Inputs
) -> tuple[str, dict[str, Any]]:
    # Adopts the VPC's default group (it cannot be created or deleted) and sets its rules.
    require(inputs, "vpcId")
    ec2 = aws.client("ec2")
    group = _default_group(ec2, inputs["vpcId"])
    if inputs.get("tags"):
        ec2.create_tags(Resources=[group["GroupId"]], Tags=tag_list(inputs["tags"]))
    return _with_rules(aws, group, "default", inputs)


def security_group(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "vpcId")
    ec2 = aws.client("ec2")
    group_name = inputs.get("name") or name
    kwargs: dict[str, Any] = {
        "GroupName": group_name,
        # The provider's default description.
        "Description": inputs.get("description") or "Managed by Pulumi",
        "VpcId": inputs["vpcId"],
        "TagSpecifications": _tags(inputs, "security-group"),
    }
    group_id = ec2.create_security_group(**kwargs)["GroupId"]
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return _with_rules(aws, group, group_name, inputs)


def _with_rules(
    aws: EmulatorClients, group: dict[str, Any], group_name: str, inputs: Inputs
) -> IdAndOutputs:
    """The group holding the declared rules, and the provider's outputs for it."""
    _set_rules(aws.client("ec2"), group, inputs)
    group_id = group["GroupId"]
    return group_id, {
        "id": group_id,
        "arn": aws.arn("ec2", f"security-group/{group_id}"),
        "name": group_name,
        "ownerId": group.get("OwnerId", aws.account_id),
    }


def subnet(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "vpcId", "cidrBlock")
    ec2 = aws.client("ec2")
    created = ec2.create_subnet(
        VpcId=inputs["vpcId"],
        CidrBlock=inputs["cidrBlock"],
        TagSpecifications=_tags(inputs, "subnet"),
        **given(inputs, AvailabilityZone="availabilityZone"),
    )["Subnet"]
    subnet_id = created["SubnetId"]
    if inputs.get("mapPublicIpOnLaunch"):
        ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
    return subnet_id, {
        "id": subnet_id,
        "arn": created.get("SubnetArn") or aws.arn("ec2", f"subnet/{subnet_id}"),
        "availabilityZone": created["AvailabilityZone"],
        "availabilityZoneId": created.get("AvailabilityZoneId", ""),
        "mapPublicIpOnLaunch": bool(inputs.get("mapPublicIpOnLaunch")),
    }


def internet_gateway(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    ec2 = aws.client("ec2")
    gateway_id = ec2.create_internet_gateway(TagSpecifications=_tags(inputs, "internet-gateway"))[
        "InternetGateway"
    ]["InternetGatewayId"]
    if inputs.get("vpcId"):
        ec2.attach_internet_gateway(InternetGatewayId=gateway_id, VpcId=inputs["vpcId"])
    return gateway_id, {"id": gateway_id, "arn": aws.arn("ec2", f"internet-gateway/{gateway_id}")}


def eip(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    if (inputs.get("domain") or "vpc") != "vpc":
        raise ValueError(f"domain {inputs.get('domain')!r}: only vpc addresses are rehearsed")
    allocated = aws.client("ec2").allocate_address(
        Domain="vpc", TagSpecifications=_tags(inputs, "elastic-ip")
    )
    allocation = allocated["AllocationId"]
    return allocation, {
        "id": allocation,
        "allocationId": allocation,
        "publicIp": allocated["PublicIp"],
        "domain": "vpc",
        "arn": aws.arn("ec2", f"elastic-ip/{allocation}"),
    }


def nat_gateway(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "subnetId", "allocationId")
    kwargs: dict[str, Any] = {
        "SubnetId": inputs["subnetId"],
        "AllocationId": inputs["allocationId"],
        "TagSpecifications": _tags(inputs, "natgateway"),
    }
    created = aws.client("ec2").create_nat_gateway(**kwargs)["NatGateway"]
    addresses = created.get("NatGatewayAddresses") or [{}]
    return created["NatGatewayId"], {
        "id": created["NatGatewayId"],
        "publicIp": addresses[0].get("PublicIp", ""),
        "privateIp": addresses[0].get("PrivateIp", ""),
        "connectivityType": "public",
    }


def route_table(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "vpcId")
    ec2 = aws.client("ec2")
    table_id = ec2.create_route_table(
        VpcId=inputs["vpcId"], TagSpecifications=_tags(inputs, "route-table")
    )["RouteTable"]["RouteTableId"]
    for route in inputs.get("routes") or []:
        kwargs: dict[str, Any] = {"RouteTableId": table_id}
        if not route.get("cidrBlock"):
            raise ValueError(f"route {route}: only IPv4 cidrBlock routes are rehearsed")
        kwargs["DestinationCidrBlock"] = route["cidrBlock"]
        targets = {k: v for k, v in route.items() if k.endswith("Id") and v}
        if len(targets) != 1:
            raise ValueError(f"route to {route['cidrBlock']}: exactly one target, got {targets}")
        (field, target), = targets.items()  # fmt: skip
        kwargs[field[:1].upper() + field[1:]] = target
        ec2.create_route(**kwargs)
    return table_id, {"id": table_id, "arn": aws.arn("ec2", f"route-table/{table_id}")}


def route_table_association(
    aws: EmulatorClients, name: str, inputs: Inputs
) -> tuple[str, dict[str, Any]]:
    require(inputs, "routeTableId", "subnetId")
    association = aws.client("ec2").associate_route_table(
        RouteTableId=inputs["routeTableId"], SubnetId=inputs["subnetId"]
    )["AssociationId"]
    return association, {"id": association}


def vpc_endpoint(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "vpcId", "serviceName")
    kind = inputs.get("vpcEndpointType") or "Gateway"
    kwargs: dict[str, Any] = {
        "VpcId": inputs["vpcId"],
        "ServiceName": inputs["serviceName"],
        "VpcEndpointType": kind,
        "TagSpecifications": _tags(inputs, "vpc-endpoint"),
        **given(
            inputs,
            RouteTableIds="routeTableIds",
            SubnetIds="subnetIds",
            SecurityGroupIds="securityGroupIds",
            PrivateDnsEnabled="privateDnsEnabled",
        ),
    }
    created = aws.client("ec2").create_vpc_endpoint(**kwargs)["VpcEndpoint"]
    endpoint_id = created["VpcEndpointId"]
    return endpoint_id, {
        "id": endpoint_id,
        "arn": aws.arn("ec2", f"vpc-endpoint/{endpoint_id}"),
        "state": created.get("State", ""),
        "vpcEndpointType": kind,
    }


def get_availability_zones(aws: EmulatorClients, args: dict[str, Any]) -> dict[str, Any]:
    filters = [{"Name": "state", "Values": [args["state"]]}] if args.get("state") else []
    zones = aws.client("ec2").describe_availability_zones(Filters=filters)["AvailabilityZones"]
    zones = sorted(zones, key=lambda z: z["ZoneName"])
    return {
        "id": aws.region,
        "names": [z["ZoneName"] for z in zones],
        "zoneIds": [z["ZoneId"] for z in zones],
        "groupNames": [z.get("GroupName", aws.region) for z in zones],
        "state": args.get("state"),
    }


def get_subnet(aws: EmulatorClients, args: dict[str, Any]) -> dict[str, Any]:
    if not args.get("id"):
        raise ValueError("getSubnet: only a lookup by id is rehearsed")
    try:
        found = aws.client("ec2").describe_subnets(SubnetIds=[args["id"]])["Subnets"]
    except Exception:
        found = []
    if not found:
        # What the provider says; the preview fails on it.
        raise ValueError(f"no matching EC2 Subnet found ({args['id']})")
    sub = found[0]
    return {
        "id": sub["SubnetId"],
        "arn": sub.get("SubnetArn") or aws.arn("ec2", f"subnet/{sub['SubnetId']}"),
        "vpcId": sub["VpcId"],
        "cidrBlock": sub["CidrBlock"],
        "availabilityZone": sub["AvailabilityZone"],
        "availabilityZoneId": sub.get("AvailabilityZoneId", ""),
    }


RESOURCES: dict[str, Handler] = {
    "aws:ec2/vpc:Vpc": vpc,
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": default_security_group,
    "aws:ec2/securityGroup:SecurityGroup": security_group,
    "aws:ec2/subnet:Subnet": subnet,
    "aws:ec2/internetGateway:InternetGateway": internet_gateway,
    "aws:ec2/eip:Eip": eip,
    "aws:ec2/natGateway:NatGateway": nat_gateway,
    "aws:ec2/routeTable:RouteTable": route_table,
    "aws:ec2/routeTableAssociation:RouteTableAssociation": route_table_association,
    "aws:ec2/vpcEndpoint:VpcEndpoint": vpc_endpoint,
}
INVOKES: dict[str, Invoke] = {
    "aws:index/getAvailabilityZones:getAvailabilityZones": get_availability_zones,
    "aws:ec2/getSubnet:getSubnet": get_subnet,
}
