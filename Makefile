# kakehashi — the two commands: `make run` and `make test`. Everything else is a helper.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
WERROR ?= OFF

.PHONY: run test setup configure build bench format format-check regen-fhir clean help

help:
	@echo "make run           set up, build and run the main job on the bundled sample data"
	@echo "make test          set up, build and run the whole test suite (ctest)"
	@echo "make bench         build and run the benchmarks under bench/"
	@echo "make format-check  check formatting with clang-format"
	@echo "make regen-fhir    regenerate fhir/ code from the pinned R4 definitions"

setup:
	@tools/setup.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DKAKEHASHI_WARNINGS_AS_ERRORS=$(WERROR) $(CMAKE_FLAGS)

configure: setup $(BUILD_DIR)/CMakeCache.txt

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@tools/run_demo.sh $(BUILD_DIR)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 600 -j $(JOBS)

bench: build
	@tools/run_bench.sh $(BUILD_DIR)

format:
	@git ls-files '*.cpp' '*.hpp' | grep -v '/generated/' | xargs clang-format -i

format-check:
	@git ls-files '*.cpp' '*.hpp' | grep -v '/generated/' | xargs clang-format --dry-run --Werror
	@echo "format-check: ok"

regen-fhir: configure
	cmake --build $(BUILD_DIR) --target kakehashi_regen_fhir

clean:
	rm -rf $(BUILD_DIR)
