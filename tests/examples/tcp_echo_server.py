# asyncio's "TCP Echo Server" example (Transports and Protocols page), with
# the port taken from argv so the tests can run it beside the C version.
import asyncio
import sys


class EchoServerProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        peername = transport.get_extra_info('peername')
        print('Connection from {}'.format(peername), flush=True)
        self.transport = transport

    def data_received(self, data):
        message = data.decode()
        print('Data received: {!r}'.format(message))
        print('Send: {!r}'.format(message), flush=True)
        self.transport.write(data)
        print('Close the client socket', flush=True)
        self.transport.close()


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: EchoServerProtocol(), '127.0.0.1', port)
    print('listening on 127.0.0.1:{}'.format(server.sockets[0].getsockname()[1]),
          file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8888))
