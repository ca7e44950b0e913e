"""``dropins dl-serve``, ``dl-agent`` and ``dl-mon`` (in ``dropins.dripline.commands``, imported
only when run; they need the ``dripline`` extra)."""

from dropins.service.maker import ServiceMaker

dl_serve = ServiceMaker("dl-serve", "dropins.dripline.commands:dl_serve",
                        "Serve a dripline service from a dl-serve YAML file (RabbitMQ)")
dl_agent = ServiceMaker("dl-agent", "dropins.dripline.commands:dl_agent",
                        "Send one dripline request (get, set, cmd) and print the reply")
dl_mon = ServiceMaker("dl-mon", "dropins.dripline.commands:dl_mon",
                      "Print dripline requests and alerts seen on the broker")
