#include "broker/properties.h"

#include <cstdio>
#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace runnel::broker {
namespace {

using Map = std::map<std::string, std::string>;
using ::testing::HasSubstr;

Map Parse(std::string_view text) {
  absl::StatusOr<Map> props = ParseProperties(text);
  EXPECT_TRUE(props.ok()) << props.status();
  return props.ok() ? *props : Map{};
}

TEST(PropertiesTest, EmptyAndCommentOnlyTextsHaveNoKeys) {
  EXPECT_EQ(Parse(""), Map{});
  EXPECT_EQ(Parse("\n\n   \n\t\f\n"), Map{});
  EXPECT_EQ(Parse("# a comment\n! another\n   # indented\n"), Map{});
}

TEST(PropertiesTest, Separators) {
  EXPECT_EQ(Parse("a=1\nb: 2\nc 3\nd\t=\t4\ne   :   5\n"),
            (Map{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}}));
  // Only the first separator counts; a second one is part of the value.
  EXPECT_EQ(Parse("f:=6\ng = = 7\nh==8\ni=a=b:c\n"),
            (Map{{"f", "=6"}, {"g", "= 7"}, {"h", "=8"}, {"i", "a=b:c"}}));
}

TEST(PropertiesTest, LeadingWhitespaceTrimmedTrailingKept) {
  EXPECT_EQ(Parse("   \t a=1\n b = two words  \n"), (Map{{"a", "1"}, {"b", "two words  "}}));
}

TEST(PropertiesTest, EmptyValues) {
  EXPECT_EQ(Parse("a=\nb\nc:\nd   \ne =  \n"),
            (Map{{"a", ""}, {"b", ""}, {"c", ""}, {"d", ""}, {"e", ""}}));
}

TEST(PropertiesTest, CommentsOnlyAtLineStart) {
  EXPECT_EQ(Parse("#a=1\n!b=2\nc=#3\nd=4 # not a comment\n"),
            (Map{{"c", "#3"}, {"d", "4 # not a comment"}}));
}

TEST(PropertiesTest, LaterKeysWin) {
  EXPECT_EQ(Parse("a=1\nb=2\na=3\n"), (Map{{"a", "3"}, {"b", "2"}}));
}

TEST(PropertiesTest, ContinuationJoinsLinesAndDropsLeadingWhitespace) {
  EXPECT_EQ(Parse("list=one, \\\n      two, \\\n\tthree\nnext=x\n"),
            (Map{{"list", "one, two, three"}, {"next", "x"}}));
  // The key itself may be continued.
  EXPECT_EQ(Parse("lo\\\n  ng=v\n"), (Map{{"long", "v"}}));
}

TEST(PropertiesTest, EvenBackslashesDoNotContinue) {
  EXPECT_EQ(Parse("a=x\\\\\nb=y\n"), (Map{{"a", "x\\"}, {"b", "y"}}));
  EXPECT_EQ(Parse("a=x\\\\\\\nb=y\n"), (Map{{"a", "x\\b=y"}}));
}

TEST(PropertiesTest, ContinuationEdgeCases) {
  // An empty line ends a continued entry.
  EXPECT_EQ(Parse("a=1\\\n\nb=2\n"), (Map{{"a", "1"}, {"b", "2"}}));
  // A continued line that starts with '#' is data, not a comment.
  EXPECT_EQ(Parse("a=1\\\n  #2\n"), (Map{{"a", "1#2"}}));
  // A comment line is never continued.
  EXPECT_EQ(Parse("# comment \\\nb=2\n"), (Map{{"b", "2"}}));
  // A backslash that ends the text is dropped.
  EXPECT_EQ(Parse("a=abc\\"), (Map{{"a", "abc"}}));
}

TEST(PropertiesTest, LineTerminators) {
  EXPECT_EQ(Parse("a=1\r\nb=2\rc=3\n"), (Map{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
  EXPECT_EQ(Parse("a=x\\\r\n   y\r\nb=2\r\n"), (Map{{"a", "xy"}, {"b", "2"}}));
  EXPECT_EQ(Parse("a=x\\\r   y"), (Map{{"a", "xy"}}));
  EXPECT_EQ(Parse("no_newline_at_end=v"), (Map{{"no_newline_at_end", "v"}}));
}

TEST(PropertiesTest, Escapes) {
  EXPECT_EQ(Parse("a=tab\\there\\nnl\\rcr\\fff\\\\back\\q\n"),
            (Map{{"a", "tab\there\nnl\rcr\fff\\backq"}}));
  // Escaped separators and blanks belong to the key.
  EXPECT_EQ(Parse("key\\ with\\ spaces=v\na\\=b=c\nx\\:y:z\n\\#h=1\n"),
            (Map{{"key with spaces", "v"}, {"a=b", "c"}, {"x:y", "z"}, {"#h", "1"}}));
  // An escaped blank at the start of a value keeps it.
  EXPECT_EQ(Parse("a=\\  b\n"), (Map{{"a", "  b"}}));
}

TEST(PropertiesTest, UnicodeEscapesBecomeUtf8) {
  EXPECT_EQ(Parse("a=\\u0041\\u00e9\\u20AC\n"), (Map{{"a", "A\xc3\xa9\xe2\x82\xac"}}));
  EXPECT_EQ(Parse("smile=\\uD83D\\uDE00\n"), (Map{{"smile", "\xf0\x9f\x98\x80"}}));
  // A lone surrogate cannot be UTF-8 and becomes U+FFFD.
  EXPECT_EQ(Parse("a=\\uD83Dx\nb=\\uDE00\n"), (Map{{"a", "\xef\xbf\xbdx"}, {"b", "\xef\xbf\xbd"}}));
  // Raw bytes outside ASCII pass through.
  EXPECT_EQ(Parse("name=h\xc3\xa9llo\n"), (Map{{"name", "h\xc3\xa9llo"}}));
}

TEST(PropertiesTest, MalformedUnicodeEscapeFailsWithLine) {
  absl::StatusOr<Map> props = ParseProperties("a=1\n# c\nb=\\u12G4\n");
  ASSERT_FALSE(props.ok());
  EXPECT_EQ(props.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(props.status().message(), "Malformed \\uxxxx encoding on line 3");
  EXPECT_FALSE(ParseProperties("a=\\u12").ok());
}

TEST(PropertiesTest, ReadsFile) {
  std::string path = ::testing::TempDir() + "/properties_test.properties";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fputs("# broker\nnode.id=3\nlog.dirs=/a,\\\n  /b\n", f);
  std::fclose(f);
  absl::StatusOr<Map> props = ReadPropertiesFile(path);
  ASSERT_TRUE(props.ok()) << props.status();
  EXPECT_EQ(*props, (Map{{"node.id", "3"}, {"log.dirs", "/a,/b"}}));
  std::remove(path.c_str());
}

TEST(PropertiesTest, MissingFileNamesPath) {
  absl::StatusOr<Map> props = ReadPropertiesFile("/nonexistent/dir/server.properties");
  ASSERT_FALSE(props.ok());
  EXPECT_EQ(props.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(props.status().message(), HasSubstr("/nonexistent/dir/server.properties"));
}

}  // namespace
}  // namespace runnel::broker
