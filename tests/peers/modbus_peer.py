#!/usr/bin/python3
"""Modbus TCP peer for millrace's integration tests (pymodbus 3.0.0, Debian's python3-pymodbus).

  modbus_peer.py serve PORT          serve the register map below on 127.0.0.1:PORT (any unit id)
  modbus_peer.py yaml                print the modbus input's register lists for the map
  modbus_peer.py expected            print {"signal": value} of every mapped value, as JSON
  modbus_peer.py read PORT KIND ADDR COUNT   print registers (KIND hr|co) read with pymodbus's client

The map covers every data type in every byte order. Values are encoded here with Python's
struct module, independently of millrace's decoder: ABCD = big endian, DCBA = little endian,
BADC = big endian with the two bytes of each register swapped, CDAB = little endian with the
bytes of each register swapped (registers in reverse order, bytes big endian inside).
"""
import asyncio
import json
import struct
import sys

ORDERS = ["ABCD", "DCBA", "BADC", "CDAB"]
# type: (struct code, words, value)
NUMBERS = [
    ("INT16", "h", 1, -1234),
    ("UINT16", "H", 1, 54321),
    ("INT32", "i", 2, -123456789),
    ("UINT32", "I", 2, 3000000000),
    ("INT64", "q", 4, -1234567890123),
    ("UINT64", "Q", 4, 9000000000000000000),
    ("FLOAT32", "f", 2, 123.25),
    ("FLOAT64", "d", 4, -2.718281828459045),
]
TEXT = "PRESS-03"  # 4 registers


def words_of(be_bytes, order):
    b = bytearray(be_bytes)
    if order == "DCBA":
        b.reverse()
    elif order == "BADC":
        for i in range(0, len(b), 2):
            b[i], b[i + 1] = b[i + 1], b[i]
    words = [(b[i] << 8) | b[i + 1] for i in range(0, len(b), 2)]
    if order == "CDAB":
        words.reverse()
    return words


def layout():
    """[(entry for the YAML, expected value, address, words)] for holding registers."""
    out = []
    addr = 0
    for name, code, n, value in NUMBERS:
        for order in ORDERS:
            ws = words_of(struct.pack(">" + code, value), order)
            sig = "%s_%s" % (name.lower(), order.lower())
            entry = {"name": sig, "address": addr, "data_type": name, "byte_order": order}
            out.append((entry, value, ws))
            addr += n
    for order in ["ABCD", "BADC"]:
        raw = TEXT.encode()
        ws = [(raw[i] << 8) | raw[i + 1] for i in range(0, len(raw), 2)]
        if order == "BADC":
            ws = [((w & 0xFF) << 8) | (w >> 8) for w in ws]
        entry = {"name": "string_" + order.lower(), "address": addr, "data_type": "STRING",
                 "length": 4, "byte_order": order}
        out.append((entry, TEXT, ws))
        addr += 4
    bits = 0b0000_0000_0000_1000  # bit 3 on
    out.append(({"name": "bit3", "address": addr, "data_type": "BIT", "bit": 3}, True, [bits]))
    out.append(({"name": "bit4", "address": addr, "data_type": "BIT", "bit": 4}, False, [bits]))
    addr += 1
    # scale and offset: 215 tenths of a degree + 1.5
    out.append(({"name": "scaled", "address": addr, "data_type": "INT16", "scale": 0.1,
                 "offset": 1.5}, 215 * 0.1 + 1.5, [215]))
    return out


def registers():
    hr = [0] * 300
    for entry, _, ws in layout():
        hr[entry["address"]:entry["address"] + len(ws)] = ws
    return hr


def emit_yaml():
    lines = ["holding_registers:"]
    for entry, _, _ in layout():
        lines.append("  - " + json.dumps(entry))
    lines.append("input_registers:")
    lines.append('  - {"name": "ir_float", "address": 0, "data_type": "FLOAT32"}')
    lines.append("coils:")
    lines.append('  - {"name": "coil0", "address": 0}')
    lines.append('  - {"name": "coil1", "address": 1}')
    lines.append("discrete_inputs:")
    lines.append('  - {"name": "di0", "address": 0}')
    print("\n".join(lines))


def expected():
    exp = {entry["name"]: value for entry, value, _ in layout()}
    exp.update({"ir_float": 0.5, "coil0": True, "coil1": False, "di0": True})
    print(json.dumps(exp))


async def serve(port):
    from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                    ModbusSlaveContext)
    from pymodbus.server import StartAsyncTcpServer
    B = ModbusSequentialDataBlock
    ir = words_of(struct.pack(">f", 0.5), "ABCD") + [0] * 98
    co = [True, False] + [False] * 98
    di = [True] + [False] * 99
    store = ModbusSlaveContext(hr=B(0, registers()), ir=B(0, ir), co=B(0, co), di=B(0, di),
                               zero_mode=True)
    ctx = ModbusServerContext(slaves=store, single=True)
    await StartAsyncTcpServer(context=ctx, address=("127.0.0.1", port))


def read(port, kind, addr, count):
    from pymodbus.client import ModbusTcpClient
    c = ModbusTcpClient("127.0.0.1", port=port)
    c.connect()
    if kind == "hr":
        r = c.read_holding_registers(addr, count, slave=1)
        print(" ".join(str(x) for x in r.registers))
    else:
        r = c.read_coils(addr, count, slave=1)
        print(" ".join(str(int(x)) for x in r.bits[:count]))
    c.close()


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "serve":
        asyncio.run(serve(int(sys.argv[2])))
    elif cmd == "yaml":
        emit_yaml()
    elif cmd == "expected":
        expected()
    elif cmd == "read":
        read(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
