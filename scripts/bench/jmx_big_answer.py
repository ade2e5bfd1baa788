#!/usr/bin/env python3
"""Writes a Hadoop /jmx answer of about SIZE_MB megabytes: beans of a NameNode-like shape,
each with numeric, text and nested attributes, every bean under a name of its own.
Usage: jmx_big_answer.py SIZE_MB OUT_FILE"""
import sys

size = int(float(sys.argv[1]) * 1_000_000)
out = open(sys.argv[2], "w")
out.write('{\n  "beans" : [ ')
written = 20
i = 0
while written < size:
    bean = (
        '{\n    "name" : "Hadoop:service=NameNode,name=Volume%d",\n'
        '    "modelerType" : "FSVolume%d",\n'
        '    "tag.Context" : "dfs",\n'
        '    "tag.Hostname" : "dn%d.example.org",\n'
        '    "BlocksTotal" : %d,\n    "CapacityUsed" : %d,\n    "PercentUsed" : %d.25,\n'
        '    "ReadLatencyNanos" : %d,\n    "WriteLatencyNanos" : %d,\n    "Healthy" : true,\n'
        '    "Usage" : { "committed" : %d, "init" : 0, "max" : %d, "used" : %d }\n  }'
        % (i, i, i % 500, i * 7, i * 4096, i % 100, i * 3, i * 5, i * 11, i * 13, i * 17)
    )
    if i:
        out.write(", ")
        written += 2
    out.write(bean)
    written += len(bean)
    i += 1
out.write(" ]\n}\n")
