"""Self-test of ``ec2_addresses``: Elastic IPs and instance termination as EC2 has them.

AWS pages followed (see ``ops_emulator/ec2_addresses.py``):
- Amazon EC2 User Guide, "Elastic IP addresses":
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/elastic-ip-addresses-eip.html
- Amazon EC2 User Guide, "Amazon EC2 instance state changes" (differences between the states: on
  terminate the Elastic IP address is disassociated; on stop it remains associated):
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-lifecycle.html
- Amazon EC2 API Reference, "AssociateAddress":
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AssociateAddress.html
- Amazon EC2 API Reference, "StopInstances":
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StopInstances.html
- Amazon EC2 API Reference, "Error codes for the Amazon EC2 API" (``IncorrectInstanceState``):
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html

Its own emulator, through boto3 as any client would call it.
"""

from __future__ import annotations

import threading
import unittest

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from ops_emulator.app import OpsEmulator

REGION = "us-east-1"


class ElasticIpsAndTermination(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        app = OpsEmulator(DomainDispatcherApplication(create_backend_app), REGION)
        cls.server = make_server("127.0.0.1", 0, app, threaded=True)
        url = f"http://127.0.0.1:{cls.server.server_port}"
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.ec2 = boto3.client(
            "ec2", region_name=REGION, endpoint_url=url, aws_access_key_id="testing",
            aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}),
        )
        cls.image = cls.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.shutdown()

    def instance(self) -> str:
        return self.ec2.run_instances(ImageId=self.image, InstanceType="t3.micro", MinCount=1, MaxCount=1)[
            "Instances"
        ][0]["InstanceId"]

    def address(self) -> str:
        return self.ec2.allocate_address(Domain="vpc")["AllocationId"]

    def described(self, allocation: str) -> dict:
        return self.ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]

    def test_terminating_an_instance_disassociates_its_elastic_ip_which_stays_allocated(self) -> None:
        instance, allocation = self.instance(), self.address()
        self.ec2.associate_address(AllocationId=allocation, InstanceId=instance, AllowReassociation=False)
        self.assertEqual(self.described(allocation).get("InstanceId"), instance)

        self.ec2.terminate_instances(InstanceIds=[instance])

        address = self.described(allocation)
        # moto, like EC2's XML, may answer an empty string for "no instance".
        self.assertFalse(address.get("InstanceId"), address)
        self.assertFalse(address.get("AssociationId"), address)
        # Free again: another instance gets it without re-association.
        other = self.instance()
        self.ec2.associate_address(AllocationId=allocation, InstanceId=other, AllowReassociation=False)
        self.assertEqual(self.described(allocation)["InstanceId"], other)

    def test_a_stopped_instance_keeps_its_elastic_ip_and_can_be_given_one(self) -> None:
        instance, allocation, second = self.instance(), self.address(), self.address()
        self.ec2.associate_address(AllocationId=allocation, InstanceId=instance, AllowReassociation=False)

        self.ec2.stop_instances(InstanceIds=[instance])

        self.assertEqual(self.described(allocation).get("InstanceId"), instance)
        stopped = self.instance()
        self.ec2.stop_instances(InstanceIds=[stopped])
        self.ec2.associate_address(AllocationId=second, InstanceId=stopped, AllowReassociation=False)
        self.assertEqual(self.described(second)["InstanceId"], stopped)

    def test_associating_an_elastic_ip_with_a_terminated_instance_fails_and_changes_nothing(self) -> None:
        instance, allocation = self.instance(), self.address()
        self.ec2.terminate_instances(InstanceIds=[instance])

        for reassociate in (False, True):
            with self.assertRaises(ClientError) as refused:
                self.ec2.associate_address(
                    AllocationId=allocation, InstanceId=instance, AllowReassociation=reassociate
                )
            self.assertEqual(refused.exception.response["Error"]["Code"], "IncorrectInstanceState")
            self.assertIn(instance, refused.exception.response["Error"]["Message"])
        self.assertFalse(self.described(allocation).get("InstanceId"))

    def test_an_address_held_by_a_live_instance_is_not_moved_to_a_terminated_one(self) -> None:
        live, gone, allocation = self.instance(), self.instance(), self.address()
        self.ec2.associate_address(AllocationId=allocation, InstanceId=live, AllowReassociation=False)
        self.ec2.terminate_instances(InstanceIds=[gone])

        with self.assertRaises(ClientError) as refused:
            self.ec2.associate_address(AllocationId=allocation, InstanceId=gone, AllowReassociation=True)

        self.assertEqual(refused.exception.response["Error"]["Code"], "IncorrectInstanceState")
        self.assertEqual(self.described(allocation)["InstanceId"], live)

    def test_stopping_a_terminated_instance_fails_and_it_stays_terminated(self) -> None:
        instance = self.instance()
        self.ec2.terminate_instances(InstanceIds=[instance])

        with self.assertRaises(ClientError) as refused:
            self.ec2.stop_instances(InstanceIds=[instance])

        self.assertEqual(refused.exception.response["Error"]["Code"], "IncorrectInstanceState")
        state = self.ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]
        self.assertEqual(state["Name"], "terminated")


if __name__ == "__main__":
    unittest.main()
