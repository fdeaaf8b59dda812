# asyncio's "UDP Echo Server" example, port from argv.
import asyncio
import sys


class EchoServerProtocol:
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        message = data.decode()
        print('Received %r from %s' % (message, addr))
        print('Send %r to %s' % (message, addr), flush=True)
        self.transport.sendto(data, addr)


async def main(port):
    print("Starting UDP server", flush=True)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: EchoServerProtocol(), local_addr=('127.0.0.1', port))
    print('listening on 127.0.0.1:{}'.format(transport.get_extra_info('sockname')[1]),
          file=sys.stderr, flush=True)
    try:
        await asyncio.sleep(3600)
    finally:
        transport.close()


asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9999))
