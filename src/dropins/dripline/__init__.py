"""dripline on RabbitMQ: services, endpoints and tools that speak dripline's wire protocol.

Everything here needs the ``dripline`` extra (aio-pika, PyYAML); the command plugins in
``dropins.plugins.dripline`` import this package only when a dl-* command runs.
"""

from dropins.dripline.codes import ReturnCode, ThrowReply
from dropins.dripline.endpoints import Endpoint, Entity, KeyValueStore
from dropins.dripline.loading import service_from_table
from dropins.dripline.service import AlertConsumer, Service

__all__ = ["AlertConsumer", "Endpoint", "Entity", "KeyValueStore", "ReturnCode", "Service",
           "ThrowReply", "service_from_table"]
