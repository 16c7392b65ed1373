#include "common/sha256.hpp"

#include <gtest/gtest.h>

#include <string>

#include "common/atomic_file.hpp"

namespace smartcash {
namespace {

// Test vectors from the FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA2_Additional.pdf").
TEST(Sha256, EmptyMessage) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, Abc) {
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, TwoBlockMessage) {
    EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, OneMillionA) {
    // Fed in uneven pieces to exercise the partial-block path.
    Sha256 hash;
    std::string chunk(997, 'a');
    std::size_t left = 1000000;
    while (left > 0) {
        std::size_t n = std::min(left, chunk.size());
        hash.update(chunk.data(), n);
        left -= n;
    }
    EXPECT_EQ(hash.hex_digest(),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PaddingBoundaries) {
    // 55, 56 and 64 bytes straddle the length field's block boundary.
    EXPECT_EQ(sha256_hex(std::string(55, 'a')),
              "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    EXPECT_EQ(sha256_hex(std::string(56, 'a')),
              "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    EXPECT_EQ(sha256_hex(std::string(64, 'a')),
              "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST(Sha256, ResetsAfterDigest) {
    Sha256 hash;
    hash.update("abc");
    std::string first = hash.hex_digest();
    hash.update("abc");
    EXPECT_EQ(hash.hex_digest(), first);
}

TEST(Sha256, HashesFiles) {
    make_directories(SMARTCASH_TEST_TMP);
    std::string path = std::string(SMARTCASH_TEST_TMP) + "/sha256_abc.txt";
    write_file_atomic(path, "abc");
    EXPECT_EQ(sha256_file(path), sha256_hex("abc"));
    EXPECT_THROW(sha256_file(path + ".missing"), IoError);
}

}  // namespace
}  // namespace smartcash
