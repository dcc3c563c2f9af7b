# Thin entry points; the real work is in scripts/ and CMake.
#   make run    install packages, build, start `triplane serve` on http://127.0.0.1:8080
#   make test   install packages, build, run every test that needs no GPU
BUILD_DIR ?= build
ASAN_BUILD_DIR ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all setup configure build run test bench format clean

all: build

setup:
	./scripts/setup

configure: setup
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/triplane serve

# Every test runs on one AddressSanitizer + UndefinedBehaviorSanitizer build (scripts/test):
# unit and integration tests, then the fuzzers; then it builds the release `triplane`
# that `make run` starts (its -O3 warnings are errors too).
test: setup
	BUILD_DIR=$(BUILD_DIR) ASAN_BUILD_DIR=$(ASAN_BUILD_DIR) JOBS=$(JOBS) ./scripts/test

bench: build
	BUILD_DIR=$(BUILD_DIR) ./bench/run

format:
	git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR)
