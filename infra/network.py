"""Where the strategy service's task runs: a small VPC of its own, or existing subnets.

The task makes only outbound calls (the broker's API, S3, DynamoDB, ECR, CloudWatch Logs,
Secrets Manager, all HTTPS) and serves nothing, so its security group has no inbound rule
and one outbound rule, TCP 443. The four `serviceNetwork` choices (infra/config/service.py;
monthly costs in docs/service.md):

- `private-nat` (default): the task in private subnets in two availability zones, out
  through one NAT gateway in a public subnet. No public IP on the task (FSBP ECS.2).
- `private-endpoints`: private subnets with no route to the internet; ECR, CloudWatch Logs
  through interface endpoints, S3 and DynamoDB through gateway endpoints. Only the paper
  broker works (the config refuses an Alpaca mode here).
- `public-ip`: public subnets and a public IP on the task, no NAT gateway. Cheapest with
  internet access, but it fails ECS.2: only when chosen.
- `subnets`: the caller's subnets (`serviceSubnetIds`), which must reach the internet (or
  the services) themselves; only the task's security group is created, in their VPC.

Every new VPC also gets the free S3 and DynamoDB gateway endpoints (no NAT data charge for
the service's busiest traffic) and its default security group emptied (FSBP EC2.2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.config.service import SERVICE_NETWORKS
from infra.names import ServiceNames
from infra.policies import parse_arn

# A /22 holds four /24 subnets: two private, two public. Small on purpose: one task.
VPC_CIDR = "10.80.0.0/22"
PRIVATE_CIDRS = ("10.80.0.0/24", "10.80.1.0/24")
PUBLIC_CIDRS = ("10.80.2.0/24", "10.80.3.0/24")
# Two zones: ECS places the task in the other one when a zone cannot take it.
ZONES = 2
HTTPS = 443
# What a Fargate task in a private subnet without internet needs (image pull and logs);
# S3 (the image layers, the bot's bucket) and DynamoDB go through gateway endpoints.
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs")
GATEWAY_ENDPOINTS = ("s3", "dynamodb")


@dataclass
class NetworkArgs:
    names: ServiceNames
    mode: str  # a key of infra.config.service.SERVICE_NETWORKS
    subnet_ids: Sequence[str] = ()  # mode "subnets" only
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: NetworkArgs) -> None:
    # infra.config refuses these already; checked again so the component never builds half
    # a network from a bad call.
    if args.mode not in SERVICE_NETWORKS:
        raise ValueError(
            f"serviceNetwork {args.mode!r}: must be one of {', '.join(SERVICE_NETWORKS)}"
        )
    if (args.mode == "subnets") != bool(args.subnet_ids):
        raise ValueError("serviceSubnetIds: required with serviceNetwork subnets, and only then")


class ServiceNetwork(pulumi.ComponentResource):
    """Outputs: `subnet_ids`, `security_group_id`, `vpc_id`; `assign_public_ip` (plain)."""

    subnet_ids: pulumi.Output[list[str]]
    security_group_id: pulumi.Output[str]
    vpc_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        _validate(args)
        super().__init__("cloud-trading-bot:service:ServiceNetwork", name, None, opts)
        self._name, self._args = name, args
        self._tags = dict(args.tags)
        self.assign_public_ip = args.mode == "public-ip"
        if args.mode == "subnets":
            self._existing()
        else:
            self._new_vpc()
        self.register_outputs(
            {
                "subnet_ids": self.subnet_ids,
                "security_group_id": self.security_group_id,
                "vpc_id": self.vpc_id,
                "assign_public_ip": self.assign_public_ip,
            }
        )

    def _child(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))

    def _tagged(self, role: str) -> dict[str, str]:
        return {**self._tags, "Name": f"{self._args.names.network}-{role}"}

    def _task_security_group(self, vpc_id: pulumi.Input[str]) -> aws.ec2.SecurityGroup:
        return aws.ec2.SecurityGroup(
            f"{self._name}-task",
            name=self._args.names.task_security_group,
            description="Strategy service task: no inbound, HTTPS out only",
            vpc_id=vpc_id,
            # Explicitly empty: nothing may connect to the task.
            ingress=[],
            egress=[
                {
                    "description": "HTTPS to the broker's API and AWS services",
                    "protocol": "tcp",
                    "from_port": HTTPS,
                    "to_port": HTTPS,
                    "cidr_blocks": ["0.0.0.0/0"],
                }
            ],
            tags=self._tags,
            opts=self._child(),
        )

    def _existing(self) -> None:
        # An invoke, not a resource: the preview fails on a subnet that does not exist.
        found = aws.ec2.get_subnet_output(
            id=self._args.subnet_ids[0], opts=pulumi.InvokeOptions(parent=self)
        )
        group = self._task_security_group(found.vpc_id)
        self.vpc_id = found.vpc_id
        self.subnet_ids = pulumi.Output.from_input(list(self._args.subnet_ids))
        self.security_group_id = group.id

    def _new_vpc(self) -> None:
        name, mode = self._name, self._args.mode
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=VPC_CIDR,
            # Interface endpoints answer under the services' own names only with both on.
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=self._tagged("vpc"),
            opts=self._child(),
        )
        # The VPC's default group allows all traffic between its members; nothing uses it,
        # so it is emptied (FSBP EC2.2).
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-group",
            vpc_id=vpc.id,
            ingress=[],
            egress=[],
            tags=self._tagged("default-unused"),
            opts=self._child(),
        )
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOptions(parent=self)
        )
        region = vpc.arn.apply(lambda arn: parse_arn(arn)[1])
        group = self._task_security_group(vpc.id)
        self.vpc_id = vpc.id
        self.security_group_id = group.id

        public = mode in ("private-nat", "public-ip")
        gateway = None
        if public:
            gateway = aws.ec2.InternetGateway(
                f"{name}-igw", vpc_id=vpc.id, tags=self._tagged("igw"), opts=self._child()
            )
        # private-nat needs one public subnet (the NAT gateway's), public-ip two (the task's).
        public_subnets = [
            self._subnet(f"public-{i}", vpc, PUBLIC_CIDRS[i], zones.names[i])
            for i in range(ZONES if mode == "public-ip" else 1 if public else 0)
        ]
        private_subnets = [
            self._subnet(f"private-{i}", vpc, PRIVATE_CIDRS[i], zones.names[i])
            for i in range(ZONES if mode != "public-ip" else 0)
        ]
        route_tables = []
        if gateway is not None:
            to_internet: aws.ec2.RouteTableRouteArgsDict = {
                "cidr_block": "0.0.0.0/0",
                "gateway_id": gateway.id,
            }
            public_routes = self._route_table("public", vpc, public_subnets, to_internet)
            route_tables.append(public_routes)
        if private_subnets:
            route: aws.ec2.RouteTableRouteArgsDict | None = None
            if mode == "private-nat":
                nat = self._nat_gateway(public_subnets[0], gateway)
                route = {"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}
            route_tables.append(self._route_table("private", vpc, private_subnets, route))
        task_subnets = public_subnets if mode == "public-ip" else private_subnets
        self.subnet_ids = pulumi.Output.all(*[s.id for s in task_subnets])

        for service in GATEWAY_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                f"{name}-{service}-endpoint",
                vpc_id=vpc.id,
                service_name=pulumi.Output.concat("com.amazonaws.", region, f".{service}"),
                vpc_endpoint_type="Gateway",
                route_table_ids=[t.id for t in route_tables],
                tags=self._tagged(service),
                opts=self._child(),
            )
        if mode == "private-endpoints":
            self._interface_endpoints(vpc, region, private_subnets[0], group)

    def _subnet(
        self, role: str, vpc: aws.ec2.Vpc, cidr: str, zone: pulumi.Input[str]
    ) -> aws.ec2.Subnet:
        return aws.ec2.Subnet(
            f"{self._name}-{role}",
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zone,
            # Never automatic: public-ip asks for the task's address in the service.
            map_public_ip_on_launch=False,
            tags=self._tagged(role),
            opts=self._child(),
        )

    def _route_table(
        self,
        role: str,
        vpc: aws.ec2.Vpc,
        subnets: list[aws.ec2.Subnet],
        route: aws.ec2.RouteTableRouteArgsDict | None,
    ) -> aws.ec2.RouteTable:
        table = aws.ec2.RouteTable(
            f"{self._name}-{role}-routes",
            vpc_id=vpc.id,
            routes=[route] if route else [],
            tags=self._tagged(f"{role}-routes"),
            opts=self._child(),
        )
        for i, subnet in enumerate(subnets):
            aws.ec2.RouteTableAssociation(
                f"{self._name}-{role}-routes-{i}",
                route_table_id=table.id,
                subnet_id=subnet.id,
                opts=self._child(),
            )
        return table

    def _nat_gateway(
        self, subnet: aws.ec2.Subnet, gateway: aws.ec2.InternetGateway | None
    ) -> aws.ec2.NatGateway:
        address = aws.ec2.Eip(
            f"{self._name}-nat-ip", domain="vpc", tags=self._tagged("nat"), opts=self._child()
        )
        # One NAT gateway, not one per zone: a single task does not pay twice for
        # redundancy; if its zone fails, the task loses egress until the zone is back.
        return aws.ec2.NatGateway(
            f"{self._name}-nat",
            allocation_id=address.id,
            subnet_id=subnet.id,
            tags=self._tagged("nat"),
            # A NAT gateway reaches the internet only once the VPC has its gateway.
            opts=self._child(depends_on=[gateway] if gateway else []),
        )

    def _interface_endpoints(
        self,
        vpc: aws.ec2.Vpc,
        region: pulumi.Output[str],
        subnet: aws.ec2.Subnet,
        task_group: aws.ec2.SecurityGroup,
    ) -> None:
        group = aws.ec2.SecurityGroup(
            f"{self._name}-endpoints",
            name=self._args.names.endpoint_security_group,
            description="Interface endpoints: HTTPS from the strategy task only",
            vpc_id=vpc.id,
            ingress=[
                {
                    "description": "HTTPS from the strategy service's task",
                    "protocol": "tcp",
                    "from_port": HTTPS,
                    "to_port": HTTPS,
                    "security_groups": [task_group.id],
                }
            ],
            egress=[],
            tags=self._tags,
            opts=self._child(),
        )
        for service in INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                f"{self._name}-{service.replace('.', '-')}-endpoint",
                vpc_id=vpc.id,
                service_name=pulumi.Output.concat("com.amazonaws.", region, f".{service}"),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                # One zone: each endpoint is billed per zone, and both subnets reach it.
                subnet_ids=[subnet.id],
                security_group_ids=[group.id],
                tags=self._tagged(service),
                opts=self._child(),
            )
