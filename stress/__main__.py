from stress.cli import main

main()
