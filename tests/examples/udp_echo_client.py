# asyncio's "UDP Echo Client" example, port from argv.
import asyncio
import sys


class EchoClientProtocol:
    def __init__(self, message, on_con_lost):
        self.message = message
        self.on_con_lost = on_con_lost
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        print('Send:', self.message)
        self.transport.sendto(self.message.encode())

    def datagram_received(self, data, addr):
        print("Received:", data.decode())
        print("Close the socket")
        self.transport.close()

    def error_received(self, exc):
        print('Error received:', exc)

    def connection_lost(self, exc):
        print("Connection closed")
        self.on_con_lost.set_result(True)


async def main(port):
    loop = asyncio.get_running_loop()
    on_con_lost = loop.create_future()
    message = "Hello World!"
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: EchoClientProtocol(message, on_con_lost), remote_addr=('127.0.0.1', port))
    try:
        await asyncio.wait_for(on_con_lost, 5)
    finally:
        transport.close()


asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9999))
