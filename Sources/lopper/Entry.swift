import LopperCLI

@main
struct Entry {
    static func main() async {
        await Lopper.main()
    }
}
