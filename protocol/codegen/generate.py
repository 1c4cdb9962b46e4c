#!/usr/bin/env python3
"""Generates C++ message types with encode/decode from the schemas in protocol/schemas.

This is the only place that knows Kafka's byte layouts per version. For every schema
file Foo.json it writes protocol/messages/foo.h and foo.cc under the output dir:
a struct Foo with one member per field (Kafka's PascalCase names in snake_case),
nested structs for the struct-typed fields, and

    bool Decode(Reader& r, int16_t version);      // false on malformed input
    void Encode(Writer& w, int16_t version) const;

Fields absent from a version keep their schema default. Flexible versions use compact
lengths and a tagged-field section at the end of every struct; tagged fields are
written only when they differ from their default, and unknown tags are skipped.
It also writes protocol/messages/api_table.h/.cc: the valid and flexible versions of
every API, which pick the header versions.

  generate.py OUT_DIR SCHEMA.json...               # write the sources
  generate.py --list-outputs OUT_DIR SCHEMA.json...  # print the paths it would write (for CMake)
  generate.py --roundtrip-test OUT.cc SCHEMA.json...  # a GoogleTest round trip of every message
"""
import json
import os
import re
import sys

KEYWORDS = {"default", "delete", "new", "class", "operator", "public", "private", "register",
            "template", "this", "union", "switch", "case", "int", "long", "short", "char",
            "float", "double", "bool", "true", "false", "const", "auto", "enum", "struct",
            "namespace", "using", "typename", "virtual", "static", "return", "if", "else", "for",
            "while", "do", "break", "continue", "goto", "sizeof", "void", "signed", "unsigned",
            "extern", "inline", "friend", "mutable", "volatile", "explicit", "export", "throw",
            "try", "catch", "and", "or", "not", "xor", "asm", "typedef"}

SCALARS = {
    # type: (C++ type, reader call, writer call)
    "bool": ("bool", "Bool", "Bool"),
    "int8": ("int8_t", "Int8", "Int8"),
    "int16": ("int16_t", "Int16", "Int16"),
    "uint16": ("uint16_t", "Uint16", "Uint16"),
    "int32": ("int32_t", "Int32", "Int32"),
    "uint32": ("uint32_t", "Uint32", "Uint32"),
    "int64": ("int64_t", "Int64", "Int64"),
    "float64": ("double", "Float64", "Float64"),
    "uuid": ("Uuid", "ReadUuid", "WriteUuid"),
}
MAX_VERSION = 32767


class Versions:
    """An inclusive version range parsed from "N+", "A-B", "N" or "none"."""

    def __init__(self, text):
        text = str(text).strip()
        if text == "none":
            self.lo, self.hi = 1, 0
        elif text.endswith("+"):
            self.lo, self.hi = int(text[:-1]), MAX_VERSION
        elif "-" in text:
            a, b = text.split("-")
            self.lo, self.hi = int(a), int(b)
        else:
            self.lo = self.hi = int(text)

    def empty(self):
        return self.lo > self.hi

    def intersect(self, other):
        r = Versions("none")
        r.lo, r.hi = max(self.lo, other.lo), min(self.hi, other.hi)
        return r

    def covers(self, other):
        """True when every version of `other` is in self."""
        return other.empty() or (self.lo <= other.lo and other.hi <= self.hi)

    def condition(self, var, within):
        """A C++ condition true for versions in self, given that var is in `within`."""
        r = self.intersect(within)
        if r.empty():
            return "false"
        parts = []
        if r.lo > within.lo:
            parts.append(f"{var} >= {r.lo}")
        if r.hi < within.hi:
            parts.append(f"{var} <= {r.hi}")
        return " && ".join(parts) if parts else "true"


def snake(name):
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s).lower()
    return s + "_" if s in KEYWORDS else s


class Field:
    def __init__(self, spec, message):
        self.name = spec["name"]
        self.member = snake(self.name)
        self.type = spec["type"]
        self.versions = Versions(spec.get("versions", "none"))
        self.nullable = Versions(spec.get("nullableVersions", "none"))
        self.tagged = Versions(spec.get("taggedVersions", "none"))
        self.tag = spec.get("tag")
        self.default = spec.get("default")
        # Only RequestHeader.ClientId overrides this ("none": never compact).
        fv = spec.get("flexibleVersions")
        self.flexible = Versions(fv) if fv is not None else None
        self.is_array = self.type.startswith("[]")
        self.elem = self.type[2:] if self.is_array else self.type
        self.struct = None
        if "fields" in spec:
            self.struct = Struct(self.elem, spec["fields"], message)
        elif self.elem not in SCALARS and self.elem not in ("string", "bytes", "records"):
            self.struct = message.common[self.elem]
        self.may_be_null = not self.nullable.empty()

    # --- C++ types -------------------------------------------------------------------
    def elem_cpp(self):
        if self.struct:
            return self.struct.name
        if self.elem in SCALARS:
            return SCALARS[self.elem][0]
        if self.elem == "records":
            return "Records"
        return "std::string"

    def cpp_type(self):
        if self.is_array:
            t = f"std::vector<{self.elem_cpp()}>"
            return f"std::optional<{t}>" if self.may_be_null else t
        if self.elem in ("string", "bytes") or self.struct:
            return f"std::optional<{self.elem_cpp()}>" if self.may_be_null else self.elem_cpp()
        return self.elem_cpp()

    def default_expr(self):
        """C++ initializer for the schema default, or None for a value-initialized member.

        As in Kafka, a field without an explicit default holds 0, false, "" or an empty
        array even when nullable; only an explicit "null" (or a nullable struct) is null.
        """
        d = self.default
        if d == "null" or (self.struct and not self.is_array and self.may_be_null):
            return "std::nullopt"
        if self.is_array:
            return f"std::vector<{self.elem_cpp()}>{{}}" if self.may_be_null else None
        if self.struct or self.elem in ("records", "uuid"):
            return None
        if self.elem in ("string", "bytes"):
            if d is None or d == "":
                return "std::string()" if self.may_be_null else None
            return json.dumps(str(d))
        if d is None:
            return None
        if self.elem == "bool":
            return "true" if str(d).lower() == "true" else "false"
        value = int(str(d), 0)
        if value == -2**31 and self.elem == "int32":
            return "INT32_MIN"
        if self.elem == "int64":
            return f"int64_t{{{value}}}"
        return str(value)

    def default_value(self):
        """C++ expression of cpp_type() holding the default."""
        e = self.default_expr()
        return f"{self.cpp_type()}{{}}" if e is None else f"{self.cpp_type()}({e})"

    def is_default_expr(self, ref):
        return f"({ref} == {self.default_value()})"


class Struct:
    def __init__(self, name, fields, message):
        self.name = name
        message.structs.append(self)  # registered before its fields' structs: reversed later
        self.fields = [Field(f, message) for f in fields]


class Message:
    def __init__(self, schema):
        self.schema = schema
        self.name = schema["name"]
        self.kind = schema["type"]
        self.api_key = schema.get("apiKey")
        self.valid = Versions(schema.get("validVersions", "0"))
        self.flexible = Versions(schema.get("flexibleVersions", "none"))
        self.structs = []
        self.common = {}
        # Common structs may refer to one another; declare them in dependency order.
        pending = list(schema.get("commonStructs", []))
        self.common_specs = {c["name"]: c for c in pending}
        for c in pending:
            self._common(c["name"])
        self.root = Struct(self.name, schema["fields"], self)

    def _common(self, name):
        if name not in self.common:
            spec = self.common_specs[name]
            for f in spec["fields"]:
                t = f["type"][2:] if f["type"].startswith("[]") else f["type"]
                if t in self.common_specs and "fields" not in f:
                    self._common(t)
            self.common[name] = None  # guard against cycles
            self.common[name] = Struct(name, spec["fields"], self)
        return self.common[name]

    def file_stem(self):
        return snake(self.name).rstrip("_")


def decl_order(message):
    """Structs in an order where each comes after the structs its fields use."""
    done, order = set(), []

    def visit(s):
        if id(s) in done:
            return
        done.add(id(s))
        for f in s.fields:
            if f.struct:
                visit(f.struct)
        order.append(s)

    for s in message.structs:
        visit(s)
    return order


class Emitter:
    def __init__(self, message):
        self.m = message
        self.out = []

    def line(self, text="", indent=0):
        self.out.append("  " * indent + text if text else "")

    # --- Encoding ---------------------------------------------------------------------
    def compact(self, field, flex_var):
        if field.flexible is not None and field.flexible.empty():
            return "false"
        return flex_var

    def write_value(self, f, ref, ind, flex, tagged_context=False):
        """Statements writing `ref` (the field value) at the current position."""
        c = self.compact(f, flex)
        nullable_now = f.nullable.condition("version", self.within) if f.may_be_null else "false"
        if f.is_array:
            if f.may_be_null:
                self.line(f"if (!{ref}) {{", ind)
                self.line(f"w.ArrayLength(-1, {c});", ind + 1)
                self.line("} else {", ind)
                self.write_array(f, f"(*{ref})", ind + 1, c, flex)
                self.line("}", ind)
            else:
                self.write_array(f, ref, ind, c, flex)
        elif f.struct:
            if f.may_be_null:
                self.line(f"if (!{ref}) {{", ind)
                self.line("w.Int8(-1);", ind + 1)
                self.line("} else {", ind)
                self.line("w.Int8(1);", ind + 1)
                self.line(f"{ref}->Encode(w, version);", ind + 1)
                self.line("}", ind)
            else:
                self.line(f"{ref}.Encode(w, version);", ind)
        else:
            self.write_scalar(f, ref, ind, c, nullable_now)

    def write_scalar(self, f, ref, ind, c, nullable_now, elem=False):
        t = f.elem
        if t in SCALARS:
            self.line(f"w.{SCALARS[t][2]}({ref});", ind)
        elif t == "records":
            self.line(f"w.WriteRecords({ref}, {c});", ind)
        elif t in ("string", "bytes"):
            fn = "String" if t == "string" else "ByteString"
            if f.may_be_null and not elem:
                self.line(f"w.Nullable{fn}({ref}, {c});", ind)
            else:
                self.line(f"w.{fn}({ref}, {c});", ind)

    def write_array(self, f, ref, ind, c, flex):
        self.line(f"w.ArrayLength(static_cast<int64_t>({ref}.size()), {c});", ind)
        self.line(f"for (const auto& e : {ref}) {{", ind)
        if f.struct:
            self.line("e.Encode(w, version);", ind + 1)
        else:
            self.write_scalar(f, "e", ind + 1, c, "false", elem=True)
        self.line("}", ind)

    # --- Decoding ---------------------------------------------------------------------
    def read_value(self, f, ref, ind, flex):
        c = self.compact(f, flex)
        nullable_now = f.nullable.condition("version", self.within) if f.may_be_null else "false"
        if f.is_array:
            self.line("{", ind)
            self.line(f"int64_t n = r.ArrayLength({c});", ind + 1)
            if f.may_be_null:
                self.line("if (n < 0) {", ind + 1)
                self.line(f"if (!({nullable_now})) r.Fail();", ind + 2)
                self.line(f"{ref}.reset();", ind + 2)
                self.line("} else {", ind + 1)
                self.line(f"{ref}.emplace();", ind + 2)
                self.read_array(f, f"(*{ref})", ind + 2, c)
                self.line("}", ind + 1)
            else:
                self.line("if (n < 0) r.Fail();", ind + 1)
                self.read_array(f, ref, ind + 1, c)
            self.line("}", ind)
        elif f.struct:
            if f.may_be_null:
                self.line("if (r.Int8() < 0) {", ind)
                self.line(f"if (!({nullable_now})) r.Fail();", ind + 1)
                self.line(f"{ref}.reset();", ind + 1)
                self.line("} else {", ind)
                self.line(f"{ref} = {f.elem_cpp()}{{}};  // not emplace(): clang rejects it for nested structs", ind + 1)
                self.line(f"{ref}->Decode(r, version);", ind + 1)
                self.line("}", ind)
            else:
                self.line(f"{ref}.Decode(r, version);", ind)
        else:
            self.read_scalar(f, ref, ind, c, nullable_now)

    def read_scalar(self, f, ref, ind, c, nullable_now, elem=False):
        t = f.elem
        if t in SCALARS:
            self.line(f"{ref} = r.{SCALARS[t][1]}();", ind)
        elif t == "records":
            self.line(f"{ref} = r.ReadRecords({c});", ind)
            if f.may_be_null:
                self.line(f"if ({ref}.is_null && !({nullable_now})) r.Fail();", ind)
            else:
                self.line(f"if ({ref}.is_null) r.Fail();", ind)
        elif t in ("string", "bytes"):
            fn = "String" if t == "string" else "ByteString"
            if f.may_be_null and not elem:
                self.line(f"{ref} = r.Nullable{fn}({c});", ind)
                self.line(f"if (!{ref} && !({nullable_now})) r.Fail();", ind)
            else:
                self.line(f"{ref} = r.{fn}({c});", ind)

    def read_array(self, f, ref, ind, c):
        self.line(f"{ref}.clear();", ind)
        self.line(f"{ref}.reserve(static_cast<size_t>(std::clamp<int64_t>(n, 0, 1024)));", ind)  # n is untrusted
        self.line("for (int64_t i = 0; i < n && r.ok(); ++i) {", ind)
        if f.struct:
            self.line(f"{ref}.emplace_back().Decode(r, version);", ind + 1)
        else:
            self.line(f"{f.elem_cpp()} e{{}};", ind + 1)
            self.read_scalar(f, "e", ind + 1, c, "false", elem=True)
            self.line(f"{ref}.push_back(std::move(e));", ind + 1)
        self.line("}", ind)

    # --- Structs ----------------------------------------------------------------------
    def struct_decl(self, s, ind, is_root):
        self.line(f"struct {s.name} {{", ind)
        if is_root:
            m = self.m
            if m.api_key is not None:
                self.line(f"static constexpr int16_t kApiKey = {m.api_key};", ind + 1)
            self.line(f"static constexpr int16_t kMinVersion = {m.valid.lo};", ind + 1)
            self.line(f"static constexpr int16_t kMaxVersion = {m.valid.hi};", ind + 1)
            flex_lo = m.flexible.lo if not m.flexible.empty() else MAX_VERSION
            self.line(f"static constexpr int16_t kFirstFlexibleVersion = {flex_lo};", ind + 1)
            self.line("static bool IsFlexible(int16_t version) { "
                      "return version >= kFirstFlexibleVersion; }", ind + 1)
            self.line()
            for nested in decl_order(m):
                if nested is not s:
                    self.struct_decl(nested, ind + 1, False)
                    self.line()
        for f in s.fields:
            d = f.default_expr()
            init = f" = {d}" if d else "{}"
            self.line(f"{f.cpp_type()} {f.member}{init};", ind + 1)
        self.line()
        ret = "bool" if is_root else "void"
        self.line(f"{ret} Decode(Reader& r, int16_t version);", ind + 1)
        self.line("void Encode(Writer& w, int16_t version) const;", ind + 1)
        self.line(f"bool operator==(const {s.name}&) const = default;", ind + 1)
        self.line("};", ind)

    def struct_defs(self, s, qual, is_root):
        m = self.m
        self.within = m.valid
        flex = "flexible"
        regular = [f for f in s.fields if not f.versions.intersect(m.valid).empty()]
        tagged = sorted([f for f in regular if not f.tagged.empty()], key=lambda f: f.tag)

        # Encode
        self.line(f"void {qual}::Encode(Writer& w, [[maybe_unused]] int16_t version) const {{")
        self.line(f"[[maybe_unused]] const bool flexible = {m.flexible.condition('version', m.valid)};", 1)
        for f in regular:
            plain = f.versions
            if not f.tagged.empty():
                # In tagged versions the field goes to the tagged section instead.
                if f.tagged.covers(f.versions.intersect(m.valid)):
                    continue
                plain_cond = f"({f.versions.condition('version', m.valid)}) && !({f.tagged.condition('version', m.valid)})"
            else:
                plain_cond = plain.condition("version", m.valid)
            if plain_cond == "true":
                self.write_value(f, f"this->{f.member}", 1, flex)
            elif plain_cond != "false":
                self.line(f"if ({plain_cond}) {{", 1)
                self.write_value(f, f"this->{f.member}", 2, flex)
                self.line("}", 1)
        if not m.flexible.empty():
            self.line("if (flexible) {", 1)
            if tagged:
                self.line("int tagged_count = 0;", 2)
                for f in tagged:
                    cond = f.tagged.intersect(f.versions).condition("version", m.valid)
                    self.line(f"if (({cond}) && !{f.is_default_expr('this->' + f.member)}) ++tagged_count;", 2)
                self.line("w.UnsignedVarint(static_cast<uint64_t>(tagged_count));", 2)
                for f in tagged:
                    cond = f.tagged.intersect(f.versions).condition("version", m.valid)
                    self.line(f"if (({cond}) && !{f.is_default_expr('this->' + f.member)}) {{", 2)
                    self.line("Writer tw;", 3)
                    self.line("{", 3)
                    self.line("Writer& w = tw;  // the value, encoded on its own to learn its size", 4)
                    self.write_value(f, f"this->{f.member}", 4, "true")
                    self.line("}", 3)
                    self.line(f"w.UnsignedVarint({f.tag});", 3)
                    self.line("w.UnsignedVarint(tw.size());", 3)
                    self.line("w.Raw(tw.buffer());", 3)
                    self.line("}", 2)
            else:
                self.line("w.UnsignedVarint(0);", 2)
            self.line("}", 1)
        self.line("}")
        self.line()

        # Decode
        ret = "bool" if is_root else "void"
        self.line(f"{ret} {qual}::Decode(Reader& r, [[maybe_unused]] int16_t version) {{")
        self.line(f"[[maybe_unused]] const bool flexible = {m.flexible.condition('version', m.valid)};", 1)
        for f in regular:
            if not f.tagged.empty():
                if f.tagged.covers(f.versions.intersect(m.valid)):
                    continue
                cond = f"({f.versions.condition('version', m.valid)}) && !({f.tagged.condition('version', m.valid)})"
            else:
                cond = f.versions.condition("version", m.valid)
            if cond == "true":
                self.read_value(f, f"this->{f.member}", 1, flex)
            elif cond != "false":
                self.line(f"if ({cond}) {{", 1)
                self.read_value(f, f"this->{f.member}", 2, flex)
                self.line("}", 1)
        if not m.flexible.empty():
            self.line("if (flexible) {", 1)
            if tagged:
                self.line("uint32_t count = r.UnsignedVarint();", 2)
                self.line("for (uint32_t i = 0; i < count && r.ok(); ++i) {", 2)
                self.line("uint32_t tag = r.UnsignedVarint();", 3)
                self.line("uint32_t size = r.UnsignedVarint();", 3)
                self.line("std::string_view value = r.Bytes(size);", 3)
                self.line("Reader tr(value);", 3)
                self.line("switch (tag) {", 3)
                for f in tagged:
                    cond = f.tagged.intersect(f.versions).condition("version", m.valid)
                    self.line(f"case {f.tag}:", 4)
                    self.line(f"if ({cond}) {{", 5)
                    self.line("Reader& r = tr;", 6)
                    self.read_value(f, f"this->{f.member}", 6, "true")
                    self.line("}", 5)
                    self.line("break;", 5)
                self.line("default:", 4)
                self.line("break;  // unknown tags are skipped", 5)
                self.line("}", 3)
                self.line("if (!tr.ok()) r.Fail();", 3)
                self.line("}", 2)
            else:
                self.line("r.SkipTaggedFields();", 2)
            self.line("}", 1)
        if is_root:
            self.line("return r.ok();", 1)
        self.line("}")
        self.line()

    def header(self):
        m = self.m
        guard = f"RUNNEL_PROTOCOL_MESSAGES_{m.file_stem().upper()}_H_"
        self.line(f"// Generated by protocol/codegen/generate.py from {m.name}.json. Do not edit.")
        self.line(f"#ifndef {guard}")
        self.line(f"#define {guard}")
        self.line()
        for inc in ("<cstdint>", "<optional>", "<string>", "<vector>"):
            self.line(f"#include {inc}")
        self.line()
        self.line('#include "protocol/wire.h"')
        self.line()
        self.line("namespace runnel::protocol {")
        self.line()
        self.struct_decl(m.root, 0, True)
        self.line()
        self.line("}  // namespace runnel::protocol")
        self.line()
        self.line(f"#endif  // {guard}")
        return "\n".join(self.out) + "\n"

    def source(self):
        m = self.m
        self.out = []
        self.line(f"// Generated by protocol/codegen/generate.py from {m.name}.json. Do not edit.")
        self.line(f'#include "protocol/messages/{m.file_stem()}.h"')
        self.line()
        self.line("#include <algorithm>")
        self.line("#include <climits>")
        self.line()
        self.line("namespace runnel::protocol {")
        self.line()
        for s in decl_order(m):
            qual = m.name if s is m.root else f"{m.name}::{s.name}"
            self.struct_defs(s, qual, s is m.root)
        self.line("}  // namespace runnel::protocol")
        return "\n".join(self.out) + "\n"


def api_table(messages):
    requests = sorted((m for m in messages if m.kind == "request"), key=lambda m: m.api_key)
    h = """// Generated by protocol/codegen/generate.py. Do not edit.
// Kafka's valid and flexible versions for every API declared in protocol/schemas.
#ifndef RUNNEL_PROTOCOL_MESSAGES_API_TABLE_H_
#define RUNNEL_PROTOCOL_MESSAGES_API_TABLE_H_

#include <cstdint>
#include <string_view>

namespace runnel::protocol {

struct ApiInfo {
  int16_t key;
  std::string_view name;
  int16_t min_version;
  int16_t max_version;
  int16_t first_flexible_version;  // 32767 when never flexible
};

// nullptr for keys that no schema declares.
const ApiInfo* FindApi(int16_t key);

// Decodes `body` as the request of API `key` at `version` and discards the result:
// false for an unknown key or version or malformed input. For fuzzing and tests.
bool DecodeRequest(int16_t key, int16_t version, std::string_view body);

namespace api {
"""
    for m in requests:
        h += f"inline constexpr int16_t k{m.name[:-len('Request')]} = {m.api_key};\n"
    h += """}  // namespace api

}  // namespace runnel::protocol

#endif  // RUNNEL_PROTOCOL_MESSAGES_API_TABLE_H_
"""
    includes = "".join(f'#include "protocol/messages/{m.file_stem()}.h"\n' for m in requests)
    cc = """// Generated by protocol/codegen/generate.py. Do not edit.
#include "protocol/messages/api_table.h"

""" + includes + """
#include "protocol/wire.h"

namespace runnel::protocol {
namespace {

constexpr ApiInfo kApis[] = {
"""
    for m in requests:
        flex = m.flexible.lo if not m.flexible.empty() else MAX_VERSION
        cc += (f'    {{{m.api_key}, "{m.name[:-len("Request")]}", {m.valid.lo}, {m.valid.hi}, '
               f"{flex}}},\n")
    cc += """};

}  // namespace

const ApiInfo* FindApi(int16_t key) {
  for (const ApiInfo& api : kApis) {
    if (api.key == key) return &api;
  }
  return nullptr;
}

bool DecodeRequest(int16_t key, int16_t version, std::string_view body) {
  const ApiInfo* api = FindApi(key);
  if (api == nullptr || version < api->min_version || version > api->max_version) return false;
  Reader r(body.data(), body.size());
  switch (key) {
""" + "".join(f"    case {m.api_key}: {{\n      {m.name} request;\n      return request.Decode(r, version);\n    }}\n" for m in requests) + """  }
  return false;
}

}  // namespace runnel::protocol
"""
    return h, cc


def example_value(f, counter):
    """A C++ expression of a non-default example value for field f (one array element)."""
    n = counter[0] = counter[0] + 1
    t = f.elem
    if f.struct:
        return None
    return {
        "bool": "true",
        "int8": str(n % 100 + 1),
        "int16": str(1000 + n),
        "uint16": str(60000 + n),
        "int32": str(100000 + n),
        "uint32": str(4000000000 + n),
        "int64": f"int64_t{{1000000000000 + {n}}}",
        "float64": f"{n}.5",
        "uuid": f"Uuid{{{{{', '.join(str((n + i) % 256) for i in range(16))}}}}}",
        "string": f'std::string("s{n}")',
        "bytes": f'std::string("b\\x00" "{n}", {2 + len(str(n))})',
        "records": f'Records::Own("RECORDS{n}")',
    }[t]


def fill_functions(m):
    """C++ functions that set every field present in a version to an example value."""
    out = []
    counter = [0]
    fn = lambda st: f"Fill_{m.name}_{st.name}"
    qual = lambda st: m.name if st is m.root else f"{m.name}::{st.name}"
    for st in decl_order(m):
        out.append(f"[[maybe_unused]] void {fn(st)}([[maybe_unused]] {qual(st)}& x, [[maybe_unused]] int16_t version) {{")
        for f in st.fields:
            if f.versions.intersect(m.valid).empty():
                continue
            cond = f.versions.condition("version", m.valid)
            ref = f"x.{f.member}"
            if f.is_array:
                body = [f"{ref}.emplace();" if f.may_be_null else f"{ref}.clear();"]
                target = f"(*{ref})" if f.may_be_null else ref
                if f.struct:
                    body += [f"{fn(f.struct)}({target}.emplace_back(), version);"]
                else:
                    body += [f"{target}.push_back({example_value(f, counter)});"]
            elif f.struct:
                if f.may_be_null:
                    body = [f"{ref} = std::remove_reference_t<decltype({ref})>::value_type{{}};", f"{fn(f.struct)}(*{ref}, version);"]
                else:
                    body = [f"{fn(f.struct)}({ref}, version);"]
            else:
                body = [f"{ref} = {example_value(f, counter)};"]
            out.append(f"  if ({cond}) {{")
            out += ["    " + b for b in body]
            out.append("  }")
        out.append("}")
        out.append("")
    return out


def roundtrip_test(messages):
    lines = ["// Generated by protocol/codegen/generate.py. Do not edit.",
             "// Every message at every version: encode an example with every field set, decode,",
             "// compare, and encode again to the same bytes.",
             "#include <gtest/gtest.h>", ""]
    lines += [f'#include "protocol/messages/{m.file_stem()}.h"' for m in messages]
    lines += ["", "namespace runnel::protocol {", "namespace {", "",
              "template <typename T, typename Fill>",
              "void RoundTrip(int16_t version, Fill fill) {",
              "  T original;",
              "  fill(original, version);",
              "  Encoded bytes;",
              "  Writer w(&bytes);",
              "  original.Encode(w, version);",
              "  Reader r(bytes.bytes);",
              "  T decoded;",
              "  ASSERT_TRUE(decoded.Decode(r, version)) << \"version \" << version;",
              "  EXPECT_EQ(r.remaining(), 0u) << \"version \" << version;",
              "  EXPECT_TRUE(decoded == original) << \"version \" << version;",
              "  Encoded again;",
              "  Writer w2(&again);",
              "  decoded.Encode(w2, version);",
              "  EXPECT_EQ(again.bytes, bytes.bytes) << \"version \" << version;",
              "  // Every strict prefix must fail to decode, never crash.",
              "  for (size_t cut = 0; cut < bytes.bytes.size(); cut += 1 + bytes.bytes.size() / 16) {",
              "    Reader prefix(bytes.bytes.data(), cut);",
              "    T partial;",
              "    EXPECT_FALSE(partial.Decode(prefix, version)) << \"cut \" << cut;",
              "  }",
              "}", ""]
    for m in messages:
        lines += fill_functions(m)
    lines += ["}  // namespace", ""]
    for m in messages:
        lines += [f"TEST(GeneratedRoundTrip, {m.name}) {{",
                  f"  for (int16_t v = {m.name}::kMinVersion; v <= {m.name}::kMaxVersion; ++v) {{",
                  f"    RoundTrip<{m.name}>(v, Fill_{m.name}_{m.name});",
                  "  }", "}", ""]
    lines += ["}  // namespace runnel::protocol", ""]
    return "\n".join(lines)


def main(argv):
    if argv[1] == "--roundtrip-test":
        out, paths = argv[2], argv[3:]
        messages = []
        for p in sorted(paths):
            with open(p) as f:
                messages.append(Message(json.load(f)))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            f.write(roundtrip_test(messages))
        return
    list_only = argv[1] == "--list-outputs"
    args = argv[2:] if list_only else argv[1:]
    out_dir, paths = args[0], args[1:]
    msg_dir = os.path.join(out_dir, "protocol", "messages")
    messages = []
    for p in sorted(paths):
        with open(p) as f:
            messages.append(Message(json.load(f)))
    outputs = [os.path.join(msg_dir, "api_table.h"), os.path.join(msg_dir, "api_table.cc")]
    for m in messages:
        outputs += [os.path.join(msg_dir, m.file_stem() + ".h"),
                    os.path.join(msg_dir, m.file_stem() + ".cc")]
    if list_only:
        print(";".join(outputs))
        return
    os.makedirs(msg_dir, exist_ok=True)

    def write(path, text):
        # Leave unchanged files alone so that dependants are not rebuilt.
        if os.path.exists(path) and open(path).read() == text:
            return
        with open(path, "w") as f:
            f.write(text)

    h, cc = api_table(messages)
    write(outputs[0], h)
    write(outputs[1], cc)
    for m in messages:
        e = Emitter(m)
        write(os.path.join(msg_dir, m.file_stem() + ".h"), e.header())
        write(os.path.join(msg_dir, m.file_stem() + ".cc"), e.source())


if __name__ == "__main__":
    main(sys.argv)
